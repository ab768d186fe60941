"""Settings declared once, with their allowed values in their types (``declared.settings``):
the validation every layer of the project uses, the maths (``srn``) included."""
