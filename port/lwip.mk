# port/lwip.mk -- the lwIP core files rproxy's lwIP builds compile (from deps/,
# fetched by scripts/fetch-deps.sh).  Included by tests/lwip-host/lwip-host.mk
# and boards/mps2-an386/board.mk.  NO_SYS=1, IPv4, TCP, ARP/Ethernet, ICMP.
LWIP_DIR ?= deps/lwip/src
LWIP_SRC  = $(addprefix $(LWIP_DIR)/core/,init.c def.c inet_chksum.c ip.c mem.c memp.c \
              netif.c pbuf.c stats.c sys.c tcp.c tcp_in.c tcp_out.c timeouts.c udp.c) \
            $(addprefix $(LWIP_DIR)/core/ipv4/,etharp.c icmp.c ip4.c ip4_addr.c ip4_frag.c) \
            $(LWIP_DIR)/netif/ethernet.c
LWIP_INC  = -I$(LWIP_DIR)/include

$(LWIP_DIR)/core/init.c:
	@sh scripts/fetch-deps.sh
