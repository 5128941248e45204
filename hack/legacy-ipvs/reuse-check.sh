#!/bin/sh
# Runs in the test VM (see verify.sh): tells whether the loaded IPVS behaves as mainline
# kernels before 5.9 under kube-proxy (conn_reuse_mode=0, expire_nodest_conn=1: "legacy")
# or as the stock 6.1 module ("stock"), with three checks, each printing "CHECK NAME KIND":
#   weight0-reuse       a SYN from a reused source port whose old entry points to a
#                       weight-0 real server: legacy follows it there, stock reschedules.
#   deleted-reuse       the same after the real server was deleted: legacy drops the SYN
#                       and expires the entry, so the connection succeeds only with the
#                       client's SYN retransmission (>= 1 s); stock expired the entry when
#                       the real server was deleted (delayed work) and answers at once.
#   deleted-established the next data packet of an established connection whose real
#                       server was deleted: legacy drops it (entry expired; the
#                       retransmission, one RTO >= 200 ms later, is reset by the node's
#                       stack); stock resets it at once.
# Prints "RESULT legacy" when all three are legacy, "RESULT stock" when all are stock,
# "RESULT mixed" otherwise.
set -eu
IP=/usr/bin/ip
VIP=10.96.0.10

# backend NAME N: namespace NAME at 10.0.N.2 behind 10.0.N.1 in the root namespace,
# answering every TCP connection on port 80 with its name.
backend() {
	$IP netns add "$1"
	$IP link add "h$1" type veth peer name eth0 netns "$1"
	$IP addr add "10.0.$2.1/24" dev "h$1" && $IP link set "h$1" up
	$IP -n "$1" addr add "10.0.$2.2/24" dev eth0
	$IP -n "$1" link set eth0 up && $IP -n "$1" link set lo up
	$IP -n "$1" route add default via "10.0.$2.1"
	printf '#!/bin/sh\necho %s\n' "$1" >"/tmp/say-$1" && chmod +x "/tmp/say-$1"
	# The server closes first, so the client keeps no TIME_WAIT and can reuse its port.
	$IP netns exec "$1" nc -ll -p 80 -e "/tmp/say-$1" &
	# An echo server on port 81 for the established connection.
	$IP netns exec "$1" nc -ll -p 81 -e /bin/cat &
}

backend a 1
backend b 2
backend c 3 # the client; its server is unused
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.ipv4.vs.conntrack=1 net.ipv4.vs.conn_reuse_mode=0 net.ipv4.vs.expire_nodest_conn=1
$IP link add vip type dummy && $IP addr add "$VIP/32" dev vip && $IP link set vip up
# One virtual service per check, so that they do not share connection entries.
for vport in 80 81 82; do
	rport=80
	[ $vport = 81 ] && rport=81
	ipvsadm -A -t "$VIP:$vport" -s rr
	ipvsadm -a -t "$VIP:$vport" -r "10.0.1.2:$rport" -m -w 1
	ipvsadm -a -t "$VIP:$vport" -r "10.0.2.2:$rport" -m -w 1
done
sleep 1

CLIENT=${REUSE_CLIENT:-/legacy-bin/reuse-client}
RESULTS=""
# verdict NAME KIND: records and prints one check's outcome.
verdict() {
	echo "CHECK $1 $2"
	RESULTS="$RESULTS $2"
}
# rs_of NAME: the real server address of backend NAME.
rs_of() {
	case $1 in a) echo 10.0.1.2 ;; b) echo 10.0.2.2 ;; *) echo "no answer: '$1'" >&2; exit 1 ;; esac
}

# weight0-reuse: weight 0, then the same source port again.
set -- $($IP netns exec c "$CLIENT" "$VIP:80" 40000)
first=$1
ipvsadm -e -t "$VIP:80" -r "$(rs_of "$first"):80" -m -w 0
sleep 1
set -- $($IP netns exec c "$CLIENT" "$VIP:80" 40000 || true) "" ""
echo "weight0-reuse: first connection: $first; after weight 0 on $first, same source port: '$1' in ${2:-?} ms"
if [ "$1" = "$first" ]; then verdict weight0-reuse legacy; else verdict weight0-reuse stock; fi

# deleted-reuse: real server deleted, then the same source port again.
set -- $($IP netns exec c "$CLIENT" "$VIP:82" 40001)
first=$1
ipvsadm -d -t "$VIP:82" -r "$(rs_of "$first"):80"
sleep 1
echo "entries of source port 40001 one second after the real server's deletion:"
ipvsadm -Lnc | grep ':40001 ' || echo "  (none)"
set -- $($IP netns exec c "$CLIENT" "$VIP:82" 40001 || true) "" ""
echo "deleted-reuse: first connection: $first; after deleting $first, same source port: '$1' in ${2:-?} ms"
if [ -z "$1" ] || [ "$1" = "$first" ]; then
	verdict deleted-reuse "unexpected"
elif [ "$2" -ge 900 ]; then
	verdict deleted-reuse legacy
else
	verdict deleted-reuse stock
fi

# deleted-established: an echo stream, then both real servers deleted under it.
$IP netns exec c "$CLIENT" -echo "$VIP:81" 40002 >/tmp/echo.out 2>&1 &
echo_pid=$!
sleep 2
ipvsadm -d -t "$VIP:81" -r 10.0.1.2:81
ipvsadm -d -t "$VIP:81" -r 10.0.2.2:81
wait $echo_pid || true
set -- $(cat /tmp/echo.out) "" ""
echo "deleted-established: the stream ended with '$1' ${2:-?} ms after its last write"
if [ "$1" != reset ]; then
	verdict deleted-established "unexpected"
elif [ "$2" -ge 150 ]; then
	verdict deleted-established legacy
else
	verdict deleted-established stock
fi

ipvsadm -Ln --connection
# Out-of-tree (O) and unsigned (E) mark the modules of build.sh.
echo "ip_vs taint flags: '$(cat /sys/module/ip_vs/taint)'"
case $RESULTS in
" legacy legacy legacy") echo "RESULT legacy" ;;
" stock stock stock") echo "RESULT stock" ;;
*) echo "RESULT mixed:$RESULTS" ;;
esac
