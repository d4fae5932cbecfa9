/*
 * pcaploop FILE: libpcap's bare read loop (pcap_next_ex until the end),
 * printing packets and bytes.  The floor for the flow benchmark.
 */
#include <stdio.h>

#include <pcap/pcap.h>

int main(int argc, char **argv)
{
    char err[PCAP_ERRBUF_SIZE];
    struct pcap_pkthdr *h;
    const u_char *d;
    unsigned long long n = 0, bytes = 0, sum = 0;
    pcap_t *p;

    if (argc != 2) {
        fprintf(stderr, "usage: pcaploop FILE\n");
        return 2;
    }
    p = pcap_open_offline(argv[1], err);
    if (p == NULL) {
        fprintf(stderr, "pcaploop: %s\n", err);
        return 1;
    }
    while (pcap_next_ex(p, &h, &d) == 1) {
        n++;
        bytes += h->len;
        sum += d[h->caplen / 2]; /* touch the data, as a reader would */
    }
    pcap_close(p);
    printf("%llu packets %llu bytes (%llu)\n", n, bytes, sum & 1);
    return 0;
}
