#!/bin/sh
# Runs in the test VM (see verify.sh): tells whether a SYN from a reused source port follows
# its old IPVS connection entry to a weight-0 real server ("legacy", kernels before 5.9
# with conn_reuse_mode=0) or is scheduled afresh ("stock" 6.1). Prints "RESULT legacy" or
# "RESULT stock".
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
}

backend a 1
backend b 2
backend c 3 # the client; its server is unused
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.ipv4.vs.conntrack=1 net.ipv4.vs.conn_reuse_mode=0 net.ipv4.vs.expire_nodest_conn=1
$IP link add vip type dummy && $IP addr add "$VIP/32" dev vip && $IP link set vip up
ipvsadm -A -t "$VIP:80" -s rr
ipvsadm -a -t "$VIP:80" -r 10.0.1.2:80 -m -w 1
ipvsadm -a -t "$VIP:80" -r 10.0.2.2:80 -m -w 1
sleep 1

CLIENT=${REUSE_CLIENT:-/legacy-bin/reuse-client}
first=$($IP netns exec c "$CLIENT" "$VIP:80" 40000)
case $first in a) ip=10.0.1.2 ;; b) ip=10.0.2.2 ;; *) echo "no answer: '$first'"; exit 1 ;; esac
ipvsadm -e -t "$VIP:80" -r "$ip:80" -m -w 0
sleep 1
second=$($IP netns exec c "$CLIENT" "$VIP:80" 40000 || true)
ipvsadm -Ln --connection
# Out-of-tree (O) and unsigned (E) mark the modules of build.sh.
echo "ip_vs taint flags: '$(cat /sys/module/ip_vs/taint)'"
echo "first connection: $first; after weight 0 on $first, same source port: '$second'"
if [ "$second" = "$first" ]; then echo "RESULT legacy"; else echo "RESULT stock"; fi
