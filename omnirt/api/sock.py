"""The flask-sock extension object, shared by the blueprints that declare WebSocket routes."""

from flask_sock import Sock

sock = Sock()
