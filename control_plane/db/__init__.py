"""PostgreSQL access: pool, named SQL, migrations, error translation."""
