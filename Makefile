# The two set-up commands (each installs and starts what it needs on a fresh Debian machine, as root):
#   make lab    the local lab: a 3-node Swarm in containers, converged with playbooks/site.yml
#   make test   every test: lint, sanity, unit, integration, Molecule
.PHONY: lab lab-down test drills

lab:
	bash scripts/lab.sh

lab-down:
	bash scripts/lab.sh down

test:
	bash scripts/test.sh

drills:
	bash tests/drills/run.sh
