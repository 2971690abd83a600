"""``python -m renderlab`` runs the CLI."""

from renderlab.cli import main

main()
