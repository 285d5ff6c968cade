"""The package's layout: the README's module map matches the tree, the import contracts hold."""
