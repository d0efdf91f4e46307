# The two commands of the README's quick start.  Both create .venv on first use.
VENV ?= .venv
PYTHON ?= python3

.PHONY: demo test clean

# pip's and setuptools' chatter goes to $(VENV)/install.log; it is shown only if the install fails.
$(VENV)/.installed: pyproject.toml
	@echo "installing melrestore into $(VENV) (log: $(VENV)/install.log)"
	@$(PYTHON) -m venv $(VENV)
	@{ $(VENV)/bin/pip install --quiet --upgrade pip && $(VENV)/bin/pip install --quiet -e '.[dev]'; } > $(VENV)/install.log 2>&1 \
		|| { cat $(VENV)/install.log; ! grep -q "No space left" $(VENV)/install.log \
			|| echo "make: the install needs about 8 GB free for $(VENV) (PyTorch): free some and run make again"; exit 1; }
	@touch $@

# Repair the shipped example recordings with the shipped U-Net into ./repaired
demo: $(VENV)/.installed
	$(VENV)/bin/melrestore batch examples/recordings -o repaired --overwrite

$(VENV)/.example-plugin: $(VENV)/.installed examples/melrestore-pghi/pyproject.toml
	@$(VENV)/bin/pip install --quiet -e examples/melrestore-pghi >> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $@

# The test suite (what CI runs): the core, then the example plugin package against it
test: $(VENV)/.installed $(VENV)/.example-plugin
	$(VENV)/bin/pytest -q
	$(VENV)/bin/pytest -q examples/melrestore-pghi/tests

clean:
	rm -rf repaired .pytest_cache
