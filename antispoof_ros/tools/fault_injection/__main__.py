"""``python -m antispoof_ros.tools.fault_injection [--only NAME ...]``."""

import sys

from antispoof_ros.tools.fault_injection.runner import main

sys.exit(main())
