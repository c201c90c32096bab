# Batch receive (RecvBatch, Datagram, recv_batch): see mpoint.h "batch receive".
