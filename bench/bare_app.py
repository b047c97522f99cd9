"""The ingress benchmark's baseline: a Flask app that answers 200 and does nothing else."""

from flask import Flask

app = Flask(__name__)


@app.route("/twilio/status", methods=["POST", "GET"])
def status_callback() -> tuple[str, int]:
    return "", 200
