"""The contract language (``.scriptum`` declarations), its JSON Schema mapping, the generated code."""
