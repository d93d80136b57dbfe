"""Runs Debian's svcrack (SIPVicious 0.3.3) unchanged, with another User-Agent.

Usage: python3 svcrack-ua.py "<User-Agent>" <svcrack arguments...>

svcrack has no option for its User-Agent and always sends "friendly-scanner", which the lab
PBX (like the stock kamailio.cfg) recognises on the first packet. Attackers who want to brute
force a filtered server change it; this shim does the same by replacing the default argument
of SIPVicious's own request builder, so that only the brute-force rule can catch the attack.
"""
import inspect
import sys

sys.path.insert(0, "/usr/share/sipvicious")

from sipvicious import svcrack  # noqa: E402
from sipvicious.libs import svhelper  # noqa: E402

user_agent = sys.argv.pop(1)
build = svhelper.makeRequest
names = list(inspect.signature(build).parameters)
defaults = list(build.__defaults__)
defaults[names.index("useragent") - (len(names) - len(defaults))] = user_agent
build.__defaults__ = tuple(defaults)
sys.argv[0] = "svcrack"
sys.exit(svcrack.main())
