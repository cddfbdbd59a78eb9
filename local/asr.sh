#!/usr/bin/env bash
# The shared stages of every recipe (ESPnet's asr.sh is the model): a recipe's run.sh
# calls this with its corpus settings; users add or override options after them.
#
# Stages:
#   0  get the corpus: locate it (--corpus-dir), download it if allowed, or (--demo true) synthesize it
#   1  lhotse manifests (checked; written atomically)
#   2  80-dim fbank with kaldifeat, lilcom chunky storage, speed perturbation of training
#   3  the lang dir: BPE model or phone inventory, k2 lexicon (L, L_disambig), n-gram LM (G), LG
#   4  train the pruned-transducer teacher (resumes an interrupted run), greedy WER on dev/test
#   5  train the students (<conf-dir>/student_<type>.yaml): distilled from the stage-4 teacher
#      (--student-kd true) or alone, the baseline (--student-kd false), or both (--student-baseline true);
#      --student-seeds gives one run per seed; greedy WER on dev/test
#   6  decode dev and test with every trained model and method; exp/results.md
#   7  export the teacher and every student for deployment: exp/<model>/export (ONNX, TorchScript, int8;
#      sherpa-onnx loads the ONNX files; local/transcribe.py --export-dir decodes them)
# Each stage skips work that is complete with the same settings (done-markers), so the
# whole script can be rerun safely, and any stage can be run alone.
set -euo pipefail

log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%d %H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
echo "$0 $*"
_shell_variables=" $(compgen -v | tr '\n' ' ') "  # to tell this script's options from the shell's variables

# Stage control.
stage=0
stop_stage=6
# Corpus.
corpus=            # a corpus module of distill/data/corpora/ (librispeech, timit, kaldi, ...)
corpus_subdir=     # the corpus directory under --dl-dir
dl_dir=$PWD/download
corpus_dir=        # where the corpus is (default: <dl-dir>/<corpus-subdir>)
prepare_opts=      # the corpus preparation's own settings, e.g. "num_phones=48" (timit)
text_norm=         # the transcripts' declared normalization (librispeech; none: unchecked): run.sh sets it
text_oov=refuse    # words outside it: refuse (stop, with a report), map (into it) or drop (those utterances)
demo=false         # synthesize the offline demo corpus instead of using the real one
demo_size=default  # default (about 7.5 h of training audio, 66 speakers) or tiny (about 2 min)
demo_opts=         # more options for local/get_corpus.py with --demo true, e.g. "--demo-natural-share 0.5"
demo_config=       # with --demo true, the recipe's demo overlay: default <conf-dir>/demo.yaml (if there is one); none: no overlay
download=true      # allow stage 0 to download a missing corpus
train_part=
dev_parts=
test_parts=
seed=13
# Features.
speed_perturb=true
extractor=kaldifeat
# Lang dir.
unit=bpe             # bpe (sentencepiece pieces, word LM) or phone (the transcripts are phones)
vocab_size=500
lm_order=3           # of the word LM (bpe) or the phone LM (phone)
# Teacher (stage 4).
conf_dir=conf        # the configs: common.yaml (what every model shares, if present), teacher.yaml, student_<type>.yaml
teacher_config=      # default: <conf-dir>/teacher.yaml
train_opts=          # extra options for local/train.py, e.g. "--set optim.base_lr=0.001"
avg=1                # decode (and export, and distil from) the teacher's last N epoch checkpoints averaged
teacher_epochs=      # default: the config's train.num_epochs
# Decoding (stage 6).
decode_methods="greedy_search modified_beam_search fast_beam_search fast_beam_search_nbest_LG"
decode_opts=         # e.g. "--beam-size 8 --ngram-lm-scale 0.1" (see local/decode.py --help)
# Students (stage 5).
students="rnn dnn"   # student types: <conf-dir>/student_<type>.yaml
student_kd=true      # distill from the teacher (true) or train alone, the baseline (false)
student_baseline=false  # with --student-kd true: also train each student alone, for the comparison
student_seeds=       # e.g. "42 7": one run per seed, exp/student_<type>_<kd|alone>_seed<N>
student_epochs=      # default: the config's train.num_epochs
student_jobs=2       # students trained side by side (each with cores/jobs threads); 1: one after another
student_avg=         # the students' N (stages 5-7; empty: --avg); at most the epochs a student has
student_use_averaged_model=false  # true: the students' N epochs averaged from the running average kept in training
                                  # (train.average_period; icefall's --use-averaged-model), not their N end points
student_speed_perturb=  # true/false: the students train on stage 2's 0.9x/1.1x copies too, or on the original cuts only; empty: the config's
# Resources.
export_chunk_ms=320   # stage 7: streaming chunk of the causal students
nj=2
nproc=1              # training processes (torchrun/DDP; gloo on CPU, nccl on GPUs)
data_dir=data
exp_dir=exp

_option_names=" "
for v in $(compgen -v); do [[ $_shell_variables == *" $v "* || $v == _shell_variables ]] || _option_names+="$v "; done

# shellcheck disable=SC2034  # read by parse_options.sh
help_message="Usage: $0 --corpus NAME --corpus-dir DIR|--corpus-subdir DIR --train-part P --dev-parts 'P..' --test-parts 'P..' [options]
Runs the recipe stages 0-7 (see the top of $0; --stop-stage defaults to 6, the export is stage 7)."

# shellcheck disable=SC1091
. "$(dirname "$0")/../utils/parse_options.sh"

# Option parsing stops at the first word that is not an option: a stray word would leave
# every option after it unread, so it is an error, as are stage numbers that run nothing.
if [ $# -gt 0 ]; then
  echo "$0: unexpected argument '$1': options are '--name value' (see --help); nothing was run" >&2
  exit 1
fi
last_stage=7
for v in stage stop_stage; do
  if ! [[ ${!v} =~ ^[0-9]+$ ]] || [ "${!v}" -gt "$last_stage" ]; then
    echo "$0: --${v//_/-} must be a stage number from 0 to $last_stage, got '${!v}'" >&2
    exit 1
  fi
done
if [ "$stage" -gt "$stop_stage" ]; then
  echo "$0: --stage $stage comes after --stop-stage $stop_stage: no stage would run" >&2
  exit 1
fi

root=$(cd "$(dirname "$0")/.." && pwd)
for v in corpus train_part dev_parts test_parts; do
  [ -n "${!v}" ] || { echo "$0: --${v//_/-} is required (the recipe's run.sh sets it)" >&2; exit 1; }
done
[ -n "$corpus_dir$corpus_subdir" ] || { echo "$0: --corpus-dir or --corpus-subdir is required" >&2; exit 1; }
teacher_opts=()
student_opts=()
# The demo's policy is the recipe's, in <conf-dir>/demo.yaml (LibriSpeech's: the 90-minute main job):
# its recipe section sets options of this script (over run.sh's, e.g. the BPE size), its teacher
# and students sections are one more config layer (under --teacher-epochs, --train-opts, ...).
if [ "$demo" = true ]; then
  demo_config=${demo_config:-$conf_dir/demo.yaml}
  if [ "$demo_config" != none ] && [ -f "$demo_config" ]; then
    overlay_settings=$(python "$root/local/overlay_options.py" "$demo_config")
    while read -r name value; do
      [ -n "$name" ] || continue
      if [[ $_option_names != *" $name "* ]] || [[ $name =~ ^(demo.*|conf_dir|stage|stop_stage)$ ]]; then
        echo "$0: $demo_config: recipe: '$name' is not an option of this script, or is one a demo overlay cannot set (see --help)" >&2
        exit 1
      fi
      log "--demo true: $demo_config sets --${name//_/-} $value (was '${!name}')"
      printf -v "$name" '%s' "$value"
    done <<< "$overlay_settings"
    teacher_opts=(--overlay "$demo_config" teacher)
    student_opts=(--overlay "$demo_config" students)
  elif [ "$demo_config" != none ] && [ "$demo_config" != "$conf_dir/demo.yaml" ]; then
    echo "$0: --demo-config $demo_config does not exist" >&2
    exit 1
  fi
fi
case $unit in
  bpe|phone) ;;
  *) echo "$0: --unit must be bpe or phone, got '$unit'" >&2; exit 1 ;;
esac
if [ -n "$teacher_epochs" ]; then teacher_opts+=(--num-epochs "$teacher_epochs"); fi
if [ -n "$student_epochs" ]; then student_opts+=(--num-epochs "$student_epochs"); fi
case $student_speed_perturb in
  true|false) student_opts+=(--set "data.speed_perturbed=$student_speed_perturb") ;;
  "") ;;
  *) echo "$0: --student-speed-perturb must be true, false or empty, got '$student_speed_perturb'" >&2; exit 1 ;;
esac
corpus_dir=${corpus_dir:-$dl_dir/$corpus_subdir}
teacher_config=${teacher_config:-$conf_dir/teacher.yaml}
# Layered configs: the dataclasses' defaults, then <conf-dir>/common.yaml, then the model's file.
common_config=()
if [ -f "$conf_dir/common.yaml" ]; then common_config=(--config "$conf_dir/common.yaml"); fi
prepare_opts_array=()
for o in $prepare_opts; do prepare_opts_array+=(--option "$o"); done
if [ -n "$text_norm" ]; then prepare_opts_array+=(--option "text_norm=$text_norm" --option "text_oov=$text_oov"); fi
# shellcheck disable=SC2206
all_parts=($train_part $dev_parts $test_parts)
manifest_dir=$data_dir/manifests
fbank_dir=$data_dir/fbank
lang_dir=$data_dir/lang_bpe_${vocab_size}
if [ "$unit" = phone ]; then lang_dir=$data_dir/lang_phone; fi

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "Stage 0: get the $corpus corpus into $corpus_dir"
  opts=()
  # shellcheck disable=SC2206  # demo_opts is a list of options
  if [ "$demo" = true ]; then opts+=(--demo --demo-size "$demo_size" $demo_opts); fi
  if [ "$download" = false ]; then opts+=(--no-download); fi
  python "$root/local/get_corpus.py" --corpus "$corpus" --corpus-dir "$corpus_dir" --parts "${all_parts[@]}" \
    --seed "$seed" --num-jobs "$nj" "${opts[@]}"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: lhotse manifests of ${all_parts[*]} -> $manifest_dir"
  python "$root/local/prepare_manifests.py" --corpus "$corpus" --corpus-dir "$corpus_dir" \
    --parts "${all_parts[@]}" --output-dir "$manifest_dir" --num-jobs "$nj" "${prepare_opts_array[@]}"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "Stage 2: $extractor fbank features -> $fbank_dir (speed perturbation: $speed_perturb)"
  sp_parts=()
  if [ "$speed_perturb" = true ]; then sp_parts=("$train_part"); fi
  python "$root/local/compute_fbank.py" --manifest-dir "$manifest_dir" --prefix "$corpus" \
    --parts "${all_parts[@]}" --output-dir "$fbank_dir" --extractor "$extractor" \
    --speed-perturb-parts "${sp_parts[@]}"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  supervisions=$manifest_dir/${corpus}_supervisions_${train_part}.jsonl.gz
  if [ "$unit" = phone ]; then
    log "Stage 3: lang dir $lang_dir (phones, identity lexicon, ${lm_order}-gram phone LM, LG)"
    # The corpus's phone set, when stage 1 wrote one (TIMIT's 39/48/60).
    phone_set=$manifest_dir/${corpus}_phones.txt
    phone_set_opt=()
    if [ -f "$phone_set" ]; then phone_set_opt=(--phone-set "$phone_set"); fi
    python "$root/local/prepare_lang_phone.py" --supervisions "$supervisions" \
      --lang-dir "$lang_dir" --lm-order "$lm_order" "${phone_set_opt[@]}"
  else
    log "Stage 3: lang dir $lang_dir (BPE $vocab_size, k2 lexicon, ${lm_order}-gram LM, LG)"
    python "$root/local/prepare_lang_bpe.py" --supervisions "$supervisions" \
      --lang-dir "$lang_dir" --vocab-size "$vocab_size" --lm-order "$lm_order"
  fi
fi

# shellcheck disable=SC2206
dev_array=($dev_parts)
# shellcheck disable=SC2206
train_opts_array=($train_opts)
cuts() { echo "$fbank_dir/${corpus}_cuts_$1.jsonl.gz"; }
# The epoch checkpoints to average for the model in $1: --avg for the teacher, --student-avg
# (default --avg) for a student, and never more than the epochs it has (a short run).
# Whether the model dir in $1 is a student's (every model but the teacher).
is_student() { [ "${1##*/}" != teacher ]; }
epochs_to_average() {
  local dir=$1 want=$avg last=0 f n
  if is_student "$dir"; then want=${student_avg:-$avg}; fi
  for f in "$dir"/epoch-*.pt; do
    n=${f##*/epoch-}; n=${n%.pt}
    if [[ $n =~ ^[0-9]+$ ]] && [ "$n" -gt "$last" ]; then last=$n; fi
  done
  if [ "$last" -gt 0 ] && [ "$last" -lt "$want" ]; then want=$last; fi
  echo "$want"
}
# How those epochs are averaged for the model in $1: "true" when a student is decoded with the
# running average kept in training (--student-use-averaged-model), else "false".
uses_averaged_model() {
  if is_student "$1" && [ "$student_use_averaged_model" = true ]; then echo true; else echo false; fi
}
# decode.py/export.py's flag for that.
averaged_model_flag() { if [ "$(uses_averaged_model "$1")" = true ]; then echo --use-averaged-model; fi; }
launcher=(python)
if [ "$nproc" -gt 1 ]; then
  launcher=(python -m distill.launch --standalone --nproc_per_node="$nproc")
fi
test_cuts=()
for p in $test_parts; do test_cuts+=("$(cuts "$p")"); done
dev_cuts=()
for p in $dev_parts; do dev_cuts+=("$(cuts "$p")"); done

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "Stage 4: train the teacher ($teacher_config, $nproc process(es)) -> $exp_dir/teacher"
  "${launcher[@]}" "$root/local/train.py" "${common_config[@]}" --config "$teacher_config" --exp-dir "$exp_dir/teacher" \
    --train-cuts "$(cuts "$train_part")" --valid-cuts "$(cuts "${dev_array[0]}")" \
    --lang-dir "$lang_dir" --resume "${teacher_opts[@]}" "${train_opts_array[@]}"
  log "Stage 4: greedy WER of the teacher on $dev_parts $test_parts"
  python "$root/local/decode.py" --exp-dir "$exp_dir/teacher" --epoch 0 --avg "$avg" \
    --lang-dir "$lang_dir" --cuts "${dev_cuts[@]}" "${test_cuts[@]}"
fi

# Stage 5, one student type: every run of it (alone and/or distilled, each seed), one after another.
train_student_runs() {
  local student=$1 kd s name
  # shellcheck disable=SC2206  # a word list
  local seeds=(${student_seeds:-""})  # one empty seed: the config's seed, no suffix
  local kd_runs=("$student_kd")        # the baseline first, when both are trained
  if [ "$student_kd" = true ] && [ "$student_baseline" = true ]; then kd_runs=(false true); fi
  for kd in "${kd_runs[@]}"; do
    for s in "${seeds[@]}"; do
      local kd_opts=()
      name=student_${student}_alone
      if [ "$kd" = true ]; then
        name=student_${student}_kd
        kd_opts=(--set "kd.teacher_exp_dir=$exp_dir/teacher" --set "kd.teacher_avg=$avg")
      fi
      if [ -n "$s" ]; then
        name=${name}_seed$s
        kd_opts+=(--set "train.seed=$s")
      fi
      log "Stage 5: train the $student student (distillation: $kd${s:+, seed $s}) -> $exp_dir/$name"
      "${launcher[@]}" "$root/local/train.py" "${common_config[@]}" --config "$conf_dir/student_$student.yaml" --exp-dir "$exp_dir/$name" \
        --train-cuts "$(cuts "$train_part")" --valid-cuts "$(cuts "${dev_array[0]}")" \
        --lang-dir "$lang_dir" --resume "${student_opts[@]}" "${kd_opts[@]}" "${train_opts_array[@]}"
      # shellcheck disable=SC2046  # no flag, or one word
      python "$root/local/decode.py" --exp-dir "$exp_dir/$name" --epoch 0 --avg "$(epochs_to_average "$exp_dir/$name")" \
        $(averaged_model_flag "$exp_dir/$name") --lang-dir "$lang_dir" --cuts "${dev_cuts[@]}" "${test_cuts[@]}"
    done
  done
}

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  # shellcheck disable=SC2206  # a word list
  student_types=($students)
  if [ "$student_jobs" -le 1 ] || [ ${#student_types[@]} -le 1 ]; then
    for student in "${student_types[@]}"; do train_student_runs "$student"; done
  else
    # Side by side: 2 one-thread processes train faster in total than one after another with
    # 2 threads each (RESULTS.md). Each type's output is appended to $exp_dir/stage5_<type>.log.
    threads=$(( $(nproc) / student_jobs )); [ "$threads" -ge 1 ] || threads=1
    mkdir -p "$exp_dir"
    pids=(); running=()
    # Wait for the oldest running student; on failure stop the others and name its log.
    wait_oldest() {
      if ! wait "${pids[0]}"; then
        log "Stage 5: the ${running[0]} student failed: see $exp_dir/stage5_${running[0]}.log"
        kill "${pids[@]}" 2> /dev/null || true
        exit 1
      fi
      log "Stage 5: the ${running[0]} student is done ($exp_dir/stage5_${running[0]}.log)"
      pids=("${pids[@]:1}"); running=("${running[@]:1}")
    }
    for student in "${student_types[@]}"; do
      if [ ${#pids[@]} -ge "$student_jobs" ]; then wait_oldest; fi  # at most $student_jobs at once
      log "Stage 5: the $student student in the background ($threads thread(s)), log: $exp_dir/stage5_$student.log"
      OMP_NUM_THREADS=$threads train_student_runs "$student" >> "$exp_dir/stage5_$student.log" 2>&1 &
      pids+=($!); running+=("$student")
    done
    while [ ${#pids[@]} -gt 0 ]; do wait_oldest; done
  fi
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  # The teacher, then every student run of the chosen types (alone, distilled, any seed).
  models=(teacher)
  for student in $students; do
    for d in "$exp_dir/student_${student}_"*; do [ -d "$d" ] && models+=("${d##*/}"); done
  done
  decoded=()
  for name in "${models[@]}"; do
    if ! compgen -G "$exp_dir/$name/epoch-*.pt" > /dev/null; then
      log "Stage 6: $exp_dir/$name has no epoch checkpoint (not trained): skipped"
      continue
    fi
    model_avg=$(epochs_to_average "$exp_dir/$name")
    log "Stage 6: decode $exp_dir/$name (avg $model_avg, running average: $(uses_averaged_model "$exp_dir/$name")) with $decode_methods on $dev_parts $test_parts"
    # shellcheck disable=SC2086,SC2046  # $decode_methods and $decode_opts are word lists; no flag, or one word
    python "$root/local/decode.py" --exp-dir "$exp_dir/$name" --epoch 0 --avg "$model_avg" $(averaged_model_flag "$exp_dir/$name") \
      --lang-dir "$lang_dir" --cuts "${dev_cuts[@]}" "${test_cuts[@]}" --method $decode_methods $decode_opts
    decoded+=("$exp_dir/$name")
  done
  [ ${#decoded[@]} -gt 0 ] || { log "Stage 6: no trained model in $exp_dir: run stages 4-5 first"; exit 1; }
  python "$root/local/results_table.py" --exp-dirs "${decoded[@]}" --out "$exp_dir/results.md"
  log "Stage 6: results table in $exp_dir/results.md"
fi
if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  models=(teacher)
  for student in $students; do
    for d in "$exp_dir/student_${student}_"*; do [ -d "$d" ] && models+=("${d##*/}"); done
  done
  exported=0
  for name in "${models[@]}"; do
    if ! compgen -G "$exp_dir/$name/epoch-*.pt" > /dev/null; then
      log "Stage 7: $exp_dir/$name has no epoch checkpoint (not trained): skipped"
      continue
    fi
    model_avg=$(epochs_to_average "$exp_dir/$name")
    manifest=$exp_dir/$name/export/export.json  # written last by the export: its presence means complete
    use_running=$(uses_averaged_model "$exp_dir/$name")
    fresh=false
    # Fresh: newer than every checkpoint, and of the same average (export.json's source.avg and
    # source.use_averaged_model).
    if [ -f "$manifest" ] && [ "$(python -c 'import json, sys; s = json.load(open(sys.argv[1]))["source"]
print(s["avg"], str(s.get("use_averaged_model", False)).lower())' "$manifest" 2> /dev/null)" = "$model_avg $use_running" ]; then
      fresh=true
      for ckpt in "$exp_dir/$name"/epoch-*.pt; do [ "$ckpt" -nt "$manifest" ] && fresh=false; done
    fi
    if [ "$fresh" = true ]; then
      log "Stage 7: $exp_dir/$name/export is newer than its last checkpoint (avg $model_avg, running average: $use_running): skipping (remove it to redo)"
      exported=$((exported + 1))
      continue
    fi
    log "Stage 7: export $exp_dir/$name (avg $model_avg, running average: $use_running) -> $exp_dir/$name/export"
    # shellcheck disable=SC2046  # no flag, or one word
    python "$root/local/export.py" --exp-dir "$exp_dir/$name" --epoch 0 --avg "$model_avg" $(averaged_model_flag "$exp_dir/$name") \
      --lang-dir "$lang_dir" \
      --cuts "${dev_cuts[0]}" --chunk-ms "$export_chunk_ms"
    exported=$((exported + 1))
  done
  [ "$exported" -gt 0 ] || { log "Stage 7: no trained model in $exp_dir: run stages 4-5 first"; exit 1; }
fi
log "Done: stages $stage-$stop_stage"
