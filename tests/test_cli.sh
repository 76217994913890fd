# test_cli.sh - the g4 command line end to end: help, run on the built-in model, synth -> info ->
# run on the file (same tokens as in memory), error lines and exit codes, --dump-logits, --tap,
# bench JSON, and the ref-only build giving the same tokens.
#
# Run by tests/run.sh with G4=build/g4 and G4_REF=build/g4-ref. Prints "PASS name" / "FAIL name"
# lines like tests/harness.h and exits 1 if any test failed.
G4=${G4:-build/g4}
G4_REF=${G4_REF:-build/g4-ref}
T=$(mktemp -d /tmp/g4_test_cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
npass=0; nfail=0
IDS="2 105 236 107 10 107"   # < 256: valid in any vocab

# result NAME CONDITION-STATUS MESSAGE
ok()   { echo "PASS $1"; npass=$((npass + 1)); }
bad()  { echo "    $2"; echo "FAIL $1"; nfail=$((nfail + 1)); }

if [ ! -x "$G4" ]; then echo "    $G4 not built"; echo "FAIL cli_binary"; exit 1; fi

# --- help ------------------------------------------------------------------------------------
t=help
out=$("$G4" --help); rc=$?
if [ $rc -ne 0 ] || ! grep -q '^usage: g4' <<<"$out"; then bad $t "g4 --help: exit $rc"
else
  fail=""
  for c in run info synth bench; do
    o=$("$G4" $c --help); r=$?
    [ $r -eq 0 ] && grep -q "^usage: g4 $c" <<<"$o" || fail="$fail $c(exit $r)"
  done
  [ -z "$fail" ] && ok $t || bad $t "--help failed for:$fail"
fi

# --- run on the built-in default model --------------------------------------------------------
t=run_default
"$G4" run --ids "$IDS" -n 8 >"$T/def.out" 2>"$T/def.err"; rc=$?
ntok=$(wc -w <"$T/def.out")
if [ $rc -ne 0 ]; then bad $t "exit $rc: $(tail -1 "$T/def.err")"
elif ! grep -Eq '^[0-9]+( [0-9]+)*$' "$T/def.out" || [ "$(wc -l <"$T/def.out")" -ne 1 ] \
     || [ "$ntok" -lt 1 ] || [ "$ntok" -gt 8 ]; then bad $t "stdout is not one line of 1..8 ids: '$(cat "$T/def.out")'"
else
  miss=""
  for k in "model    synthetic tiny f32 seed 1" "config   tiny" "kernels  " "memory   weights" \
           "prefill  6 tokens" "decode   " "peak RSS"; do
    grep -q "^$k" "$T/def.err" || miss="$miss '$k'"
  done
  [ -z "$miss" ] && ok $t || bad $t "stderr lacks:$miss"
fi
echo "    default model tokens: $(cat "$T/def.out")"
VOCAB=$(sed -n 's/.* vocab \([0-9]*\),.*/\1/p' "$T/def.err" | head -1)
DMODEL=$(sed -n 's/.* d_model \([0-9]*\),.*/\1/p' "$T/def.err" | head -1)
NLAYERS=$(sed -n 's/^config   [^:]*: \([0-9]*\) layers.*/\1/p' "$T/def.err" | head -1)

# the same run is deterministic
t=run_deterministic
"$G4" run --ids "$IDS" -n 8 >"$T/def2.out" 2>/dev/null
[ -s "$T/def.out" ] && cmp -s "$T/def.out" "$T/def2.out" && ok $t || bad $t "two runs differ: '$(cat "$T/def.out")' vs '$(cat "$T/def2.out")'"

# --- synth -> info -> run on the file == in memory ---------------------------------------------
t=synth_info_run_f32
if ! "$G4" synth --config tiny --type f32 --seed 1 -o "$T/tiny.gguf" 2>"$T/synth.err"; then
  bad $t "synth failed: $(tail -1 "$T/synth.err")"
elif ! "$G4" info "$T/tiny.gguf" >"$T/info.out" 2>"$T/info.err"; then
  bad $t "info failed: $(tail -1 "$T/info.err")"
elif ! grep -q 'g4.synthetic.seed' "$T/info.out" || ! grep -q 'token_embd.weight' "$T/info.out" \
     || ! grep -q '^memory   weights' "$T/info.out" || ! grep -q '^totals ' "$T/info.out"; then
  bad $t "info output lacks the seed key, token_embd, totals or the memory line"
else
  "$G4" run "$T/tiny.gguf" --ids "$IDS" -n 8 >"$T/file.out" 2>"$T/file.err"
  cmp -s "$T/def.out" "$T/file.out" && ok $t \
    || bad $t "file gives '$(cat "$T/file.out")', in memory '$(cat "$T/def.out")' ($(tail -1 "$T/file.err"))"
fi

t=synth_run_q8_0
"$G4" synth --config tiny --type q8_0 --seed 7 -o "$T/q8.gguf" 2>/dev/null
"$G4" run "$T/q8.gguf" --ids "$IDS" -n 8 >"$T/q8f.out" 2>"$T/q8f.err"; r1=$?
"$G4" run synth:tiny:q8_0:7 --ids "$IDS" -n 8 >"$T/q8m.out" 2>/dev/null; r2=$?
if [ $r1 -ne 0 ] || [ $r2 -ne 0 ]; then bad $t "exit $r1/$r2: $(tail -1 "$T/q8f.err")"
elif ! cmp -s "$T/q8f.out" "$T/q8m.out"; then bad $t "file '$(cat "$T/q8f.out")' vs memory '$(cat "$T/q8m.out")'"
elif cmp -s "$T/q8f.out" "$T/def.out" && [ "$(wc -w <"$T/def.out")" -gt 3 ]; then
  bad $t "seed 7 q8_0 gives the same tokens as seed 1 f32: the seed is ignored?"
else ok $t; fi

# --- errors: bad flags exit 2, missing files one line + exit 1 ---------------------------------
t=bad_flag_exit2
fail=""
for args in "run --bogus" "frobnicate" "run -n abc" "synth --config tiny" "bench --reps 0" \
            "run --tap nofile" "info"; do
  "$G4" $args >/dev/null 2>&1; r=$?
  [ $r -eq 2 ] || fail="$fail [$args -> $r]"
done
[ -z "$fail" ] && ok $t || bad $t "expected exit 2:$fail"

t=missing_file_one_line
fail=""
for c in run info; do
  "$G4" $c "$T/nope.gguf" >/dev/null 2>"$T/miss.err"; r=$?
  n=$(wc -l <"$T/miss.err")
  if [ $r -ne 1 ] || [ "$n" -ne 1 ] || ! grep -q "^g4: .*nope.gguf" "$T/miss.err"; then
    fail="$fail [$c: exit $r, $n lines: $(head -c 200 "$T/miss.err")]"
  fi
done
[ -z "$fail" ] && ok $t || bad $t "$fail"

t=truncated_file_one_line
head -c 1000 "$T/tiny.gguf" >"$T/trunc.gguf"
"$G4" run "$T/trunc.gguf" >/dev/null 2>"$T/trunc.err"; r=$?
if [ $r -eq 1 ] && [ "$(wc -l <"$T/trunc.err")" -eq 1 ] && grep -q "^g4: .*trunc.gguf" "$T/trunc.err"; then ok $t
else bad $t "exit $r: $(head -c 300 "$T/trunc.err")"; fi

t=mem_limit_refuses
"$G4" run --mem-limit 1K >/dev/null 2>"$T/mem.err"; r=$?
if [ $r -eq 1 ] && [ "$(wc -l <"$T/mem.err")" -eq 1 ] && grep -q "^g4: .*limit" "$T/mem.err"; then ok $t
else bad $t "exit $r: $(cat "$T/mem.err")"; fi

# --- dump-logits: positions * vocab * 4 bytes, independent of the batch split ------------------
t=dump_logits_size
"$G4" run --ids "$IDS" -n 1 --dump-logits "$T/lg.f32" >/dev/null 2>"$T/lg.err"; r=$?
want=$((6 * ${VOCAB:-0} * 4))
got=$(stat -c %s "$T/lg.f32" 2>/dev/null || echo 0)
if [ $r -eq 0 ] && [ -n "$VOCAB" ] && [ "$got" -eq "$want" ]; then ok $t
else bad $t "exit $r, size $got, want 6 * vocab ${VOCAB:-?} * 4 = $want"; fi

t=dump_logits_batch_invariant
"$G4" run --ids "$IDS" -n 1 --batch 2 --dump-logits "$T/lg2.f32" >/dev/null 2>&1
cmp -s "$T/lg.f32" "$T/lg2.f32" && ok $t || bad $t "logits of the prompt differ between --batch 32 and --batch 2"

# --- tap ---------------------------------------------------------------------------------------
t=tap_writes_rows
"$G4" run --ids "$IDS" -n 1 --tap layer_out.1="$T/l1.f32" --tap embed="$T/emb.f32" >/dev/null 2>"$T/tap.err"; r=$?
want=$((6 * ${DMODEL:-0} * 4))
g1=$(stat -c %s "$T/l1.f32" 2>/dev/null || echo 0); g2=$(stat -c %s "$T/emb.f32" 2>/dev/null || echo 0)
if [ $r -eq 0 ] && [ -n "$DMODEL" ] && [ "$g1" -eq "$want" ] && [ "$g2" -eq "$want" ] \
   && ! cmp -s "$T/l1.f32" "$T/emb.f32"; then ok $t
else bad $t "exit $r, sizes $g1 / $g2, want 6 * d_model ${DMODEL:-?} * 4 = $want ($(tail -1 "$T/tap.err"))"; fi

t=tap_all_layers
"$G4" run --ids "$IDS" -n 1 --tap layer_out="$T/all.f32" >/dev/null 2>&1
want=$((${NLAYERS:-0} * 6 * ${DMODEL:-0} * 4)); got=$(stat -c %s "$T/all.f32" 2>/dev/null || echo 0)
[ -n "$NLAYERS" ] && [ "$got" -eq "$want" ] && ok $t || bad $t "size $got, want layers ${NLAYERS:-?} * 6 * d_model * 4 = $want"

t=tap_unknown_name
"$G4" run --ids "$IDS" -n 1 --tap nosuch="$T/x.f32" >/dev/null 2>"$T/tapx.err"; r=$?
[ $r -eq 1 ] && [ "$(wc -l <"$T/tapx.err" | tr -d ' ')" -ge 1 ] && grep -q "^g4: --tap nosuch" "$T/tapx.err" \
  && ok $t || bad $t "exit $r: $(tail -1 "$T/tapx.err")"

# --- bench: one JSON object per test ----------------------------------------------------------
t=bench_json
"$G4" bench --pp 4 --tg 2 --reps 2 >"$T/bench.out" 2>"$T/bench.err"; r=$?
if [ $r -ne 0 ]; then bad $t "exit $r: $(tail -1 "$T/bench.err")"
elif [ "$(wc -l <"$T/bench.out")" -ne 2 ] || ! grep -q '"test": "pp4"' "$T/bench.out" \
     || ! grep -q '"test": "tg2"' "$T/bench.out"; then bad $t "want 2 lines pp4, tg2: $(cat "$T/bench.out")"
elif command -v python3 >/dev/null && ! python3 -c '
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    for k in ("commit", "cpu", "kernels", "threads", "model", "wtype", "test", "n_tokens", "samples",
              "median_s", "tok_s", "gb_s", "load_s", "peak_rss", "loadavg", "logits_hash"):
        assert k in o, k
    assert len(o["samples"]) == 2 and o["median_s"] > 0 and o["tok_s"] > 0
' "$T/bench.out" 2>"$T/py.err"; then bad $t "JSON check: $(tail -1 "$T/py.err")"
else ok $t; fi

# --- the ref-only build gives the same tokens -------------------------------------------------
t=ref_build_same_tokens
if [ ! -x "$G4_REF" ]; then bad $t "$G4_REF not built"
else
  "$G4_REF" run --ids "$IDS" -n 8 >"$T/ref.out" 2>"$T/ref.err"; r=$?
  if [ $r -eq 0 ] && cmp -s "$T/ref.out" "$T/def.out" && grep -q '^kernels  ref' "$T/ref.err"; then ok $t
  else bad $t "exit $r: g4-ref '$(cat "$T/ref.out")' vs g4 '$(cat "$T/def.out")'"; fi
fi

# --- multimodal: image + audio through the built-in model (issue 3) ---------------------------
t=run_image_audio
"$G4" run --image tests/data/sample.png --audio tests/data/sample.wav --ids "$IDS" -n 4 \
    --dump-logits "$T/mm.f32" >"$T/mm.out" 2>"$T/mm.err"; r=$?
np=$(sed -n 's/^image .*: \([0-9]*\) patches.*/\1/p' "$T/mm.err")
nf=$(sed -n 's/^audio .*: \([0-9]*\) frames.*/\1/p' "$T/mm.err")
vocab=$(sed -n 's/.*vocab \([0-9]*\),.*/\1/p' "$T/mm.err" | head -1)
if [ $r -ne 0 ]; then bad $t "exit $r: $(tail -1 "$T/mm.err")"
elif [ -z "$np" ] || [ -z "$nf" ] || [ "$np" -lt 1 ] || [ "$nf" -lt 1 ]; then bad $t "no patch/frame count: $(cat "$T/mm.err")"
else
  # prompt = 6 ids + (<|image> + np + <image|>) + (<|audio> + nf + <audio|>)
  want=$(( (6 + np + 2 + nf + 2) * vocab * 4 ))
  got=$(stat -c %s "$T/mm.f32")
  [ "$got" -eq "$want" ] && ok $t || bad $t "logits file $got bytes, want $want"
fi

t=image_placeholder_position
# the image placeholder id in --ids decides where the block goes: a different place, other logits
"$G4" run --image tests/data/sample.png --ids "2 105 502 107" -n 1 --dump-logits "$T/ph1.f32" >/dev/null 2>"$T/ph1.err"; r1=$?
"$G4" run --image tests/data/sample.png --ids "2 105 107" -n 1 --dump-logits "$T/ph2.f32" >/dev/null 2>"$T/ph2.err"; r2=$?
if [ $r1 -ne 0 ] || [ $r2 -ne 0 ]; then bad $t "exit $r1/$r2: $(tail -1 "$T/ph1.err") $(tail -1 "$T/ph2.err")"
elif [ "$(stat -c %s "$T/ph1.f32")" -ne "$(stat -c %s "$T/ph2.f32")" ]; then bad $t "same prompt length expected"
elif cmp -s "$T/ph1.f32" "$T/ph2.f32"; then bad $t "placeholder position made no difference"
else ok $t; fi

t=bad_image_one_line
printf '\x89PNG\r\n\x1a\nbroken' >"$T/broken.png"
"$G4" run --image "$T/broken.png" >/dev/null 2>"$T/bi.err"; r=$?
if [ $r -eq 1 ] && [ "$(wc -l <"$T/bi.err")" -eq 1 ] && grep -q "^g4: $T/broken.png: " "$T/bi.err"; then ok $t
else bad $t "exit $r: $(cat "$T/bi.err")"; fi

t=audio_31s_limit
# a 31 s 16 kHz mono 16-bit WAV of silence: header by hand, 992000 data bytes
le32() { printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $((($1 >> 8) & 255)))\\x$(printf %02x $((($1 >> 16) & 255)))\\x$(printf %02x $((($1 >> 24) & 255)))"; }
{ printf 'RIFF'; le32 $((36 + 992000)); printf 'WAVEfmt '; le32 16; printf '\x01\x00\x01\x00'
  le32 16000; le32 32000; printf '\x02\x00\x10\x00'; printf 'data'; le32 992000
  head -c 992000 /dev/zero; } >"$T/long.wav"
"$G4" run --audio "$T/long.wav" -n 1 >/dev/null 2>"$T/la.err"; r=$?
"$G4" run --audio "$T/long.wav" --max-audio-seconds 0 -n 1 >/dev/null 2>"$T/lb.err"; r2=$?
if [ $r -eq 1 ] && grep -q -- "--max-audio-seconds" "$T/la.err" && [ "$(wc -l <"$T/la.err")" -eq 1 ] \
   && [ $r2 -eq 0 ] && grep -q '^audio .* 775 frames' "$T/lb.err"; then ok $t
else bad $t "limit exit $r ($(cat "$T/la.err")), raised exit $r2 ($(tail -1 "$T/lb.err"))"; fi

# --- text in, text out (issue 4) --------------------------------------------------------------
t=run_text_default
"$G4" run -p "Hello there" -n 8 >"$T/p.out" 2>"$T/p.err"; r=$?
if [ $r -eq 0 ] && grep -q '^vocab    built-in tiny' "$T/p.err" && [ "$(wc -l <"$T/p.out")" -eq 1 ]; then ok $t
else bad $t "exit $r: $(tail -1 "$T/p.err")"; fi

t=run_text_real_vocab
# the real Gemma vocabulary (reduced to what the corpus needs, real ids) with its chat tokens
# renamed the Gemma 4 way (<start_of_turn> -> <|turn>, ...; spec 6), in a synthetic GGUF
sed 's/<start_of_turn>/<|turn>/g; s/<end_of_turn>/<turn|>/g; s/"<pad>": *0,/"<pad>":0,"<|channel>":100,"<channel|>":101,/' \
    tests/data/tok/vocab.json >"$T/vocab_g4.json"
"$G4" synth --config tiny --type q8_0 --vocab "$T/vocab_g4.json" -o "$T/real.gguf" >/dev/null 2>"$T/rs.err"; r1=$?
"$G4" run "$T/real.gguf" -p "Hello, world" -n 12 --temp 0.8 --seed 5 >"$T/rv.out" 2>"$T/rv.err"; r2=$?
nchar=$(tr -d '\n' <"$T/rv.out" | wc -m)
if [ $r1 -ne 0 ] || [ $r2 -ne 0 ]; then bad $t "exit $r1/$r2: $(tail -1 "$T/rs.err") $(tail -1 "$T/rv.err")"
elif ! grep -q '(262145 ids)' "$T/rv.err"; then bad $t "vocabulary not loaded from the GGUF: $(grep vocab "$T/rv.err")"
elif [ "$nchar" -lt 1 ] || ! iconv -f UTF-8 -t UTF-8 "$T/rv.out" >/dev/null 2>&1; then bad $t "no valid UTF-8 text: '$(cat "$T/rv.out")'"
else ok $t; fi

t=run_text_raw
"$G4" run "$T/real.gguf" -p "Hello, world" --raw -n 4 >/dev/null 2>"$T/raw.err"; r=$?
[ $r -eq 0 ] && grep -q '^prefill  4 tokens' "$T/raw.err" && ok $t || bad $t "exit $r: $(grep prefill "$T/raw.err") $(tail -1 "$T/raw.err")"

t=chat_two_turns
printf 'hello\nand again\n' | "$G4" run --chat -n 4 >"$T/chat.out" 2>"$T/chat.err"; r=$?
if [ $r -eq 0 ] && [ "$(grep -o '> ' "$T/chat.out" | wc -l)" -ge 2 ]; then ok $t
else bad $t "exit $r: $(tail -1 "$T/chat.err")"; fi

t=bad_vocab_one_line
printf '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}' >"$T/bad_tok.json"
"$G4" run -p hi --vocab "$T/bad_tok.json" >/dev/null 2>"$T/bv.err"; r=$?
if [ $r -eq 1 ] && [ "$(grep -c '^g4: ' "$T/bv.err")" -eq 1 ] && tail -1 "$T/bv.err" | grep -q "^g4: .*bad_tok.json: "; then ok $t
else bad $t "exit $r: $(cat "$T/bv.err")"; fi

echo "# $npass passed, $nfail failed"
[ $nfail -eq 0 ]
