"""Flask extensions, created uninitialised; create_app() binds them to an app."""
from flask_appbuilder import Model
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

# Sharing FAB's declarative base puts ab_* and our tables in one metadata,
# so Alembic autogenerate sees them together.
db = SQLAlchemy(model_class=Model)
migrate = Migrate()
csrf = CSRFProtect()
