"""Data assimilation with a trained Koopman prior, in two modules imported by name:

  variational  the core: the cost J of a problem (every pixel at once) and its minimisation
               (`assimilate`, `analysis`), the background and free-run states;
  driver       a gridded series end to end: its pixels laid out as a problem, the gap-filling
               and forecast analyses and the free run as one pure function, and the host loop
               that feeds the devices and leaves out pixels without observations.
"""
