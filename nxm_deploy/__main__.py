"""``python -m nxm_deploy`` (also what ``torchrun -m nxm_deploy train ...`` runs)."""

from nxm_deploy.cli import main

main()
