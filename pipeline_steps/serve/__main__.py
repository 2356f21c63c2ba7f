"""`python -m pipeline_steps.serve serve`: what SageMaker runs in the serving container."""

import sys

from pipeline_steps.serve.server import main

if __name__ == "__main__":
    sys.exit(main())
