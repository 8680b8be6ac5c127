"""Development entry point: ``python run.py`` (use a WSGI server in production)."""
from app import create_app

app = create_app()

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=8080, debug=True)
