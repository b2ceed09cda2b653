#!/usr/bin/perl
# Verifies the DKIM signatures of a message with Mail::DKIM, offline: the DNS answers come from
# Net::DNS::Resolver::Mock, loaded from a zone file of TXT records.
#   usage: dkim_verify.pl MESSAGE-FILE ZONE-FILE
# Prints one line per signature, "result domain selector algorithm detail", then the overall
# result as "overall RESULT".
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Mail::DKIM::DNS;
use Net::DNS::Resolver::Mock;

my ($message_file, $zone_file) = @ARGV;
die "usage: $0 MESSAGE-FILE ZONE-FILE\n" unless defined $zone_file;

my $resolver = Net::DNS::Resolver::Mock->new();
$resolver->zonefile_read($zone_file);
Mail::DKIM::DNS::resolver($resolver);

open(my $fh, '<:raw', $message_file) or die "cannot read $message_file: $!\n";
my $dkim = Mail::DKIM::Verifier->new();
while (my $line = <$fh>) {
    $line =~ s/\r?\n\z/\r\n/;
    $dkim->PRINT($line);
}
$dkim->CLOSE();
close($fh);

foreach my $sig ($dkim->signatures) {
    printf "%s %s %s %s %s\n", $sig->result, $sig->domain, $sig->selector, $sig->algorithm,
        ($sig->result_detail // '');
}
print "overall ", $dkim->result, "\n";
