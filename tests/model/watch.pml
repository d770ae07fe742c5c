/*
 * The revocation stream, modelled (issue 25 item 6; design in docs/revocation-stream.md).
 *
 *   store's log ──poll──► replica ──WatchRevocations──► verifier ──Verify(token)
 *
 * What is checked, for every interleaving of the processes below within the bounds:
 *   (1) SAFETY   no verifier reports a token active when the token's revocation committed
 *                more than BOUND ticks earlier (abstract time, one clock; a replica's
 *                offset from the database is bounded by --max_clock_offset, outside the model).
 *   (2) NO GAP   a verifier that holds a position (epoch, seq) has applied every entry of that
 *                epoch's log up to seq whose token can still verify: nothing is skipped across
 *                resume, reset, reconnect, compaction or a restore.
 *   (3) ORDER    the live tail arrives gapless: seq = previous seq + 1.
 *
 * Processes: Clock (time moves), Writer (appends revocations), Reaper (compacts dead entries,
 * with a clock that may run SKEW ahead), Poller (the replica reads the log; may stall = a
 * stale replica), Restore (once: the store goes back to an earlier log, new epoch), Stream
 * (the server's side of one connection at a time) and Verifier (applies messages, answers
 * Verify, reconnects after a cut). The connection may be cut at any moment, and is cut when
 * the per-stream buffer is full (a slow reader).
 *
 * Each -DBUG_* variant removes one rule of the protocol; tests/model/check_model.sh checks
 * that the model passes as written and that every variant fails, so the checker can fail.
 *   BUG_NO_EPOCH        resume ignores the log's epoch (a restore's log is read as the old one)
 *   BUG_BOOKMARK_NOW    a bookmark carries the sender's clock instead of the replica's proof
 *   BUG_NO_STALE_RULE   the verifier trusts its view however old its last bookmark is
 *   BUG_REAPER_NO_MARGIN  the reaper deletes by its own (fast) clock with no margin
 *   BUG_RESET_KEEPS_TRUST the verifier clears its view on a reset but keeps trusting its last
 *                         bookmark while the new snapshot arrives (a verifier may instead keep
 *                         its old view and swap at the end-of-snapshot: the model allows both)
 */

/* Bounds (tests/model/check_model.sh passes smaller ones for the default run). */
#ifndef NTOK
#define NTOK   3   /* revocations the writer makes: token j is revoked by the j-th append */
#endif
#ifndef MAXSEQ
#define MAXSEQ 4   /* sequence numbers per epoch */
#endif
#ifndef TMAX
#define TMAX   5   /* abstract time horizon */
#endif
#define BOUND  1   /* the verifier's staleness bound (ticks) */
#ifndef QCAP
#define QCAP   2   /* the per-stream buffer */
#endif
#define MAXCUT 1   /* connection cuts besides those a full buffer or a restore forces */
#define SKEW   1   /* how far the reaper's clock may run ahead */
#ifdef BUG_REAPER_NO_MARGIN
#define MARGIN 0
#else
#define MARGIN SKEW /* the reaper keeps a margin >= the allowed clock offset */
#endif

mtype = { RESET, ENTRY, EOS, BOOKMARK };

byte now = 0;

/* The store's log. */
byte epoch = 1;               /* changes when the store is restored from a backup */
byte last = 0;                /* highest seq appended in this epoch */
byte floor = 0;               /* highest seq the reaper has deleted */
byte ent_tok[MAXSEQ + 1];     /* seq -> token it revokes (0: none or deleted) */
byte tok_rev[NTOK + 1];       /* token -> 1 + commit time of its revocation in this log (0: none) */
byte tok_exp[NTOK + 1];       /* token -> its exp: after it, the token is dead anyway */
byte next_tok = 1;

/* The replica: what it has read from the log, and the time its last read began. */
byte srv_seen = 0;
byte srv_as_of = 0;

/* One connection at a time. */
chan ch = [QCAP] of { mtype, byte, byte };
bool want_conn = false;        /* the verifier asks for a new stream */
bool idle = true;              /* no stream is being served */
bool cut = false;              /* the stream ended; the verifier reconnects */
byte cuts = 0;
byte req_epoch, req_seq;       /* the verifier's resume position (req_epoch 0: none) */

/* The verifier. */
bool v_rev[NTOK + 1];
byte v_epoch = 0;              /* 0: no position yet */
byte v_seq = 0;
bool v_snap = false;           /* inside a snapshot (after RESET, before EOS) */
byte v_bm = 0;                 /* 1 + the time of the last bookmark it accepted (0: none) */

inline cut_stream() {
  atomic {
    do
    :: nempty(ch) -> ch?_, _, _
    :: empty(ch) -> break
    od;
    cut = true
  }
}

proctype Clock() {
  do
  :: now < TMAX -> now++
  :: else -> break
  od
}

proctype Writer() {
  do
  :: atomic {
       next_tok <= NTOK && last < MAXSEQ ->
       last++;
       ent_tok[last] = next_tok;
       tok_rev[next_tok] = now + 1;
       next_tok++
     }
  :: else -> break
  od
}

/* Deletes any entry whose token is dead by the reaper's clock (now + SKEW) less its margin. */
proctype Reaper() {
  byte i;
  do
  :: d_step {  /* one pass deletes every entry dead by its clock less its margin */
       for (i : 1 .. MAXSEQ) {
         if
         :: i <= last && ent_tok[i] != 0 && tok_exp[ent_tok[i]] + MARGIN <= now + SKEW ->
            ent_tok[i] = 0;
            if
            :: i > floor -> floor = i
            :: else -> skip
            fi
         :: else -> skip
         fi
       }
       i = 0  /* temporaries are zeroed so they do not multiply the states */
     }
  :: now == TMAX -> break
  od
}

/* The replica's follower: one poll reads everything committed so far. It may stall forever. */
proctype Poller() {
  do
  :: atomic { (srv_seen != last || srv_as_of != now) -> srv_seen = last; srv_as_of = now }
  :: break
  od
}

/* Once: the store is restored to an earlier point of its log; the replica restarts. */
proctype Restore() {
  byte b, i;
  if
  :: atomic {
       last > floor;
       select(b : floor .. last - 1);
       for (i : 1 .. MAXSEQ) {
         if
         :: i > b && ent_tok[i] != 0 -> tok_rev[ent_tok[i]] = 0; ent_tok[i] = 0
         :: else -> skip
         fi
       }
       last = b;
       epoch++;
       srv_seen = last;
       srv_as_of = now;
       b = 0; i = 0;
       if
       :: !cut -> cut_stream()  /* the restarted replica's streams end */
       :: else -> skip
       fi
     }
  :: skip
  fi
}

/* The server's side: per connection, resume or reset + snapshot, then tail and bookmarks. */
proctype Stream() {
  byte sent, i, snap_to;
  bool resume;
end_conn:
  atomic {
    want_conn && !cut;
    want_conn = false;
    idle = false;
#ifdef BUG_NO_EPOCH
    resume = (req_epoch != 0 && req_seq >= floor && req_seq <= last);
#else
    resume = (req_epoch == epoch && req_seq >= floor && req_seq <= last);
#endif
    if
    :: resume -> sent = req_seq
    :: else ->
       ch!RESET(epoch, 0);
       snap_to = srv_seen;
       i = floor + 1
    fi
  }
  if
  :: !resume ->
     do  /* the snapshot: every entry still in the log up to snap_to */
     :: cut -> goto done
     :: atomic {
          !cut && i <= snap_to && ent_tok[i] == 0 -> i++
        }
     :: atomic {
          !cut && i <= snap_to && ent_tok[i] != 0 ->
          if
          :: nfull(ch) -> ch!ENTRY(i, ent_tok[i]); i++
          :: full(ch) -> cut_stream()
          fi
        }
     :: atomic {
          !cut && i > snap_to ->
          if
          :: nfull(ch) -> ch!EOS(snap_to, 0); sent = snap_to; i = 0; snap_to = 0; break
          :: full(ch) -> cut_stream()
          fi
        }
     od
  :: else -> skip
  fi;
end_tail:
  do  /* the tail */
  :: cut -> goto done
  :: atomic {
       !cut && sent < srv_seen ->
       if
       :: floor > sent || ent_tok[sent + 1] == 0 ->
          /* the next entry was compacted under a slow stream: end it; the verifier's resume
             position is now older than the log, so it gets a reset and a snapshot */
          cut_stream()
       :: else ->
          if
          :: nfull(ch) -> ch!ENTRY(sent + 1, ent_tok[sent + 1]); sent++
          :: full(ch) -> cut_stream()
          fi
       fi
     }
  :: atomic {
       !cut && sent == srv_seen && now <= srv_as_of + BOUND && empty(ch) ->
#ifdef BUG_BOOKMARK_NOW
       ch!BOOKMARK(sent, now)
#else
       ch!BOOKMARK(sent, srv_as_of)
#endif
     }
  :: now == TMAX && empty(ch) -> goto done
  od;
done:
  atomic { sent = 0; i = 0; snap_to = 0; resume = false; idle = true };
  if
  :: now < TMAX -> goto end_conn
  :: else -> skip
  fi
}

/* Checked in every reachable state: Verify(token) for each token, and the view's completeness. */
proctype Monitor() {
  byte j, k;
  bool act;
end_watch:
  do
  :: d_step {
       for (j : 1 .. NTOK) {
         /* Verify(j): the staleness rule, the view, the token's own exp */
#ifdef BUG_NO_STALE_RULE
         act = (v_bm > 0 && !v_rev[j] && now < tok_exp[j]);
#else
         act = (v_bm > 0 && now <= v_bm - 1 + BOUND && !v_rev[j] && now < tok_exp[j]);
#endif
         /* (1) never active once its revocation is older than the bound */
         assert(!(act && tok_rev[j] != 0 && tok_rev[j] - 1 + BOUND < now))
       }
       /* (2) every live entry of the verifier's epoch up to its position is in its view */
       for (k : 1 .. MAXSEQ) {
         assert(!(v_epoch == epoch && !v_snap && k <= v_seq && ent_tok[k] != 0 &&
                  now < tok_exp[ent_tok[k]]) || v_rev[ent_tok[k]])
       }
       j = 0; k = 0; act = false
     }
  od
}

proctype Verifier() {
  mtype m;
  byte a, b, j;
  atomic { req_epoch = 0; req_seq = 0; want_conn = true }
  do
  :: ch?m(a, b) ->
     d_step {
       if
       :: m == RESET ->
          for (j : 1 .. NTOK) { v_rev[j] = false }
          j = 0;
          v_epoch = a; v_seq = 0; v_snap = true;
#ifndef BUG_RESET_KEEPS_TRUST
          v_bm = 0
#endif
       :: m == ENTRY ->
          assert(v_snap || a == v_seq + 1);  /* (3) the tail is gapless */
          v_rev[b] = true;
          if
          :: !v_snap -> v_seq = a
          :: else -> skip
          fi
       :: m == EOS -> v_snap = false; v_seq = a
       :: m == BOOKMARK ->
          if
          :: !v_snap && v_epoch != 0 -> v_bm = b + 1
          :: else -> skip
          fi
       fi;
       m = 0; a = 0; b = 0
     }
  :: atomic { !cut && cuts < MAXCUT -> cuts++; cut_stream() }
  :: atomic {  /* reconnect after a cut, resuming from its position */
       cut && empty(ch) && idle ->
       cut = false;
       if
       :: v_epoch != 0 && !v_snap -> req_epoch = v_epoch; req_seq = v_seq
       :: else -> req_epoch = 0; req_seq = 0
       fi;
       want_conn = true
     }
  :: now == TMAX -> break
  od
}

init {
  byte j;
  atomic {
    for (j : 1 .. NTOK) { tok_exp[j] = j + 2 }  /* token j expires at j + 2 */
    run Clock(); run Writer(); run Reaper(); run Poller(); run Restore();
    run Stream(); run Verifier(); run Monitor()
  }
}
