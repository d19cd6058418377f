#!/bin/sh
# report.sh BUILD ARM_CC FLASH_MAX RAM_MAX: prints the size check from the link maps that the Makefile
# made (sizes as linked: after --gc-sections, per input file); the last line is the totals and the
# verdict. Exit 1 when the core is over budget, 2 when the build is missing.
set -eu
build=$1 cc=$2 flash_max=$3 ram_max=$4
rel=$build/release/henge-core.map
msg=$build/msgs/henge-core.map
[ -f "$rel" ] && [ -f "$msg" ] || { echo "size check: $rel or $msg missing (run make -C firmware-libcoap/size)" >&2; exit 2; }

# One line per kept input section of a memory section: "<file> <text|data|bss> <bytes>". Input
# sections are the indented lines of the memory map (a long name puts address and size on the next
# line); alignment padding (*fill*) goes to the file before it. Merged string sections overlap in the
# map: each size is cut at the next section's address. POSIX awk (mawk: no strtonum).
sections() {
  awk '
    /^Linker script and memory map/ { on = 1; next }
    !on { next }
    function hex(h,   i, n, c) {
      n = 0; h = tolower(h); sub(/^0x/, "", h)
      for (i = 1; i <= length(h); i++) { c = index("0123456789abcdef", substr(h, i, 1)); n = n * 16 + c - 1 }
      return n
    }
    function kind(s) {
      if (s ~ /^\.(text|rodata|glue_7|glue_7t|vfp11_veneer|v4_bx|ARM\.exidx|ARM\.extab)/) return "text"
      if (s ~ /^\.data/) return "data"
      if (s ~ /^(\.bss|COMMON)/) return "bss"
      return ""
    }
    # Records in map order; merged string sections overlap, so a size is cut at the next address.
    function add(s, addr, size, file) {
      n++; rk[n] = kind(s); ra[n] = addr; rs[n] = size; rf[n] = file; ro[n] = out
      if (rk[n] != "") { lastf = file; lastk = rk[n] }
    }
    /^[.A-Za-z]/ { out++; pending = ""; next }
    /^ \*fill\*/ { if (NF >= 3 && lastf != "") { n++; rk[n] = lastk; ra[n] = hex($2); rs[n] = hex($3); rf[n] = lastf; ro[n] = out } next }
    /^ [.A-Z]/ {
      if (NF >= 4) { add($1, hex($2), hex($3), $4); pending = "" }
      else if (NF == 1) pending = $1
      next
    }
    pending != "" && /^  +0x/ && NF >= 3 { add(pending, hex($1), hex($2), $3); pending = ""; next }
    { pending = "" }
    END {
      for (i = 1; i <= n; i++) {
        if (rk[i] == "" || rs[i] == 0) continue
        size = rs[i]
        if (i < n && ro[i + 1] == ro[i] && ra[i + 1] >= ra[i] && ra[i + 1] - ra[i] < size) size = ra[i + 1] - ra[i]
        if (size > 0) print rf[i], rk[i], size
      }
    }
  ' "$1"
}

# Totals of one map per row label: core files by name, library archives by name, the state and the entry stub apart.
rows() {
  sections "$1" | awk '
    {
      f = $1
      if (f ~ /\/state\.o$/) label = "state"
      else if (f ~ /\/entry\.o$/) label = "entry"
      else if (f ~ /\.a\(/) { label = f; sub(/\(.*/, "", label); sub(/.*\//, "", label); m = f; sub(/.*\(/, "", m); sub(/\)$/, "", m); members[label] = members[label] (index(members[label], " " m " ") ? "" : " " m " ") }
      else { label = f; sub(/.*\//, "", label); sub(/\.o$/, ".c", label); label = "core/" label }
      size[label, $2] += $3; seen[label] = 1
    }
    END {
      for (l in seen) {
        mem = members[l]; gsub(/^ +| +$/, "", mem); gsub(/  +/, ",", mem)
        printf "%s\t%d\t%d\t%d\t%s\n", l, size[l, "text"], size[l, "data"], size[l, "bss"], mem
      }
    }' | sort
}

gcc_version=$("$cc" -dumpversion)
rows "$rel" > "$build/release/rows.tsv"
rows "$msg" > "$build/msgs/rows.tsv"

echo "henge core, Cortex-M0+ (arm-none-eabi-gcc $gcc_version: -mcpu=cortex-m0plus -mthumb -Os -ffreestanding -ffunction-sections -fdata-sections;"
echo "HENGE_NO_ERRMSG, default limits of core/henge_config.h; linked with --gc-sections, newlib-nano and libgcc; sizes in bytes as linked)"
awk -F '\t' -v flash_max="$flash_max" -v ram_max="$ram_max" -v msgs="$build/msgs/rows.tsv" -v su_dir="$build/release" '
  BEGIN {
    printf "%-52s %7s %7s %7s\n", "file", ".text", ".data", ".bss"
    while ((getline line < msgs) > 0) { split(line, c, "\t"); if (c[1] != "entry") mflash += c[2] + c[3] }
  }
  $1 ~ /^core\// { printf "%-52s %7d %7d %7d\n", $1, $2, $3, $4; t += $2; d += $3; b += $4; next }
  $1 == "state" { st_t = $2; st_d = $3; st_b = $4; next }
  $1 == "entry" { en = $2 + $3 + $4; next }
  { lib[$1] = sprintf("%-52s %7d %7d %7d  (%s)", $1 " helpers", $2, $3, $4, $5); t += $2; d += $3; b += $4 }
  END {
    for (l in lib) print lib[l]
    printf "%-52s %7d %7d %7d\n", "state a port keeps (henge_snapshot, _device, _slots)", st_t, st_d, st_b
    t += st_t; d += st_d; b += st_b
    printf "(not counted: entry.c, the table that keeps every public function: %d B)\n", en
    printf "with the error messages compiled in (no HENGE_NO_ERRMSG): flash %d B\n", mflash
    flash = t + d; ram = d + b
    ok = (flash <= flash_max && ram <= ram_max)
    printf "TOTAL .text %d .data %d .bss %d | flash (.text+.data) %d B of %d: %s | static RAM (.data+.bss) %d B of %d: %s | %s\n", \
      t, d, b, flash, flash_max, flash <= flash_max ? "ok" : "OVER", ram, ram_max, ram <= ram_max ? "ok" : "OVER", ok ? "PASS" : "FAIL"
    exit ok ? 0 : 1
  }' "$build/release/rows.tsv" > "$build/release/table.txt" || status=$?
status=${status:-0}
# The rows must add up to the image the linker wrote (a check of the map parsing above).
size_tool=$(printf '%s' "$cc" | sed 's/gcc$/size/')
image=$("$size_tool" -A "$build/release/henge-core.elf" | awk '$1 ~ /^\.(text|rodata|data|bss|ARM\.exidx|ARM\.extab|glue)/ { n += $2 } END { print n + 0 }')
rows_sum=$(awk -F '\t' '{ n += $2 + $3 + $4 } END { print n + 0 }' "$build/release/rows.tsv")
if [ "$image" != "$rows_sum" ]; then
  echo "size check: the rows add up to $rows_sum B but $size_tool says the image is $image B: report.sh misread the map" >&2
  exit 2
fi
# The largest stack frame (-fstack-usage), before the totals: the last line stays the verdict.
sed '$d' "$build/release/table.txt"
echo "(the rows, with entry.c, add up to the linked image: $image B by $size_tool -A)"
cat "$build"/release/*.su | sort -t "$(printf '\t')" -k2 -n -r | head -1 | awk -F '\t' '{ n = split($1, p, ":"); printf "largest stack frame: %s, %d B (%s; frames only, not the call depth)\n", p[n], $2, $3 }'
tail -n 1 "$build/release/table.txt"
exit "$status"
