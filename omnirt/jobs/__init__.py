"""Jobs: the record of one request through the fleet (``job``), where records live (``store``), which worker
processes are alive to run them (``workers``), and how long their stages took (``stats``)."""
