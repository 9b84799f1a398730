# peer.awk: the hand-written awk an operator would write instead of strictly.
#
# For lines in the lab's access-log format (see fixtures/sample/README.md),
# counts requests per (mTLS_Origin, mTLS_Destination) pair, and plaintext
# requests (mTLS_Origin "-") per destination. It is deliberately naive, as the
# benchmark peer of `strictly report`: no envelope, time window, XFCC or
# malformed-line handling, and a plaintext line's destination is "-".
#
#   mawk -f benches/peer.awk target/bench-data/lab-1000000.log
{
    if (!match($0, /mTLS_Origin: "[^"]*"/))
        next
    origin = substr($0, RSTART + 14, RLENGTH - 15)
    destination = "?"
    if (match($0, /mTLS_Destination: "[^"]*"/))
        destination = substr($0, RSTART + 19, RLENGTH - 20)
    pairs[origin " -> " destination]++
    if (origin == "-")
        plaintext[destination]++
}

END {
    for (pair in pairs)
        printf "%10d  %s\n", pairs[pair], pair
    for (destination in plaintext)
        printf "%10d  plaintext -> %s\n", plaintext[destination], destination
}
