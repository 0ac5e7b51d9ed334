# The two set-up commands (each installs and starts what it needs on a fresh Debian machine, as root):
#   make lab    the local lab: a 3-node Swarm in containers, converged with playbooks/site.yml
#   make test   every test: lint, sanity, unit, integration, Molecule
# Quicker checks while changing code (seconds, no containers): make lint, make unit.
.PHONY: lab lab-down test drills lint unit

lab:
	bash scripts/lab.sh

lab-down:
	bash scripts/lab.sh down

test:
	bash scripts/test.sh

drills:
	bash tests/drills/run.sh

lint:
	bash scripts/quick.sh lint

unit:
	bash scripts/quick.sh unit
