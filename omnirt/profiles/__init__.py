"""Runtime profiles: one YAML file describing a deployment, and the tools that act on it.

* :mod:`omnirt.profiles.schema`: the format (marshmallow), loading, the published JSON Schema;
* :mod:`omnirt.profiles.validation`: the profile checked against the registry, every problem at once;
* :mod:`omnirt.profiles.plan`: the processes a profile runs, with their commands and ``OMNIRT_*`` environments;
* :mod:`omnirt.profiles.launch` and :mod:`omnirt.profiles.respawn`: ``omnirt profile up`` on one host;
* :mod:`omnirt.profiles.render`: compose, Kubernetes and systemd deploy files.
"""
