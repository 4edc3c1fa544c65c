import sys

CLI = (sys.executable, "-m", "govreports.flows.cli")  # the command, as a subprocess of the test's Python
