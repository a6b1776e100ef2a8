import sqlalchemy as sa


def test_fresh_database_is_migrated(fresh_engine: sa.Engine) -> None:
    with fresh_engine.connect() as conn:
        levels = dict(conn.execute(sa.text("SELECT name, level FROM role")).all())
    assert levels == {"owner": 40, "admin": 30, "manager": 20, "member": 10}
