"""``python -m mpoint join`` and ``python -m mpoint send``: the mcjoin/iperf-class
command-line tools (joincli, sendcli), their shared argument checks (args) and
where they may run (place)."""
