# Network events (EventSet core): see mpoint.h "network events".
