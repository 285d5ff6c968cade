"""Per-session machinery of the plugin, one concern a module (DESIGN section 7):

- ``resources``: where the platform is (``Connection``), the embedded server, and this process's
  client, runner, dispatcher and redactor (``SessionResources``);
- ``smoke``: smoke tests in the process that runs them: specs, early dispatch, expectations, and
  the record each report carries;
- ``records``: that per-test report record (``ReportRecord``) and the book that folds reports into
  the outcome's test records;
- ``gate_owner``: the process that owns the gate: preflight, verdict, rollback, ``SessionOutcome``
  and the evidence written from it;
- ``verification``: both ends of the verification re-run after a rollback;
- ``xdist``: which process does what (one class per role) and every key of the xdist channel;
- ``evidence_hooks``: per-test JUnit properties and Allure evidence.

Evidence never imports this package; it is imported by ``plugin`` only.
"""
