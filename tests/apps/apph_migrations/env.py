from novalet.db import migration

migration.run_env()
