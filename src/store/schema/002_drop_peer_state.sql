-- peer_state was never written: what a peer holds of each owner lives in
-- the session (its Hello and acks), which is all the strategy choice needs.
DROP TABLE peer_state;
