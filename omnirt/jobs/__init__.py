"""Jobs: the record of one request through the fleet (``job``) and where records live (``store``)."""
