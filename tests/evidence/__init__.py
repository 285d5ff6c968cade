"""Evidence: the JSON bundle and its schema, JUnit, Allure, redaction, what importing it loads."""
