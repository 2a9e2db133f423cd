;; NV12 -> model tensor kernels of preprocess.ts in WebAssembly SIMD, four output pixels per step:
;; planar float32, then (interleave, bytes, interleaveBytes, at the end) any other layout or dtype.
;;
;; Source columns are x0 + step*x, so the luma bytes of a group of four output pixels sit within one
;; 16-byte load at x0 + 4*step*k, and its four chroma pairs within one 16-byte load at
;; cx0 + 4*step*k (cx0 = x0 rounded down to even); swizzle masks pick them out. Loads may reach
;; up to 15 bytes past a row's last used byte: the caller leaves that much room after the frame.
;;
;;   point: one luma and one chroma sample per output pixel (e.g. 1920 -> 640, exactly 3:1).
;;   blend: two luma taps per axis (columns x and x+1, rows y and y+stride) with the same weights
;;          for every pixel, and one chroma sample (e.g. 1280 -> 640, exactly 2:1): each tap is
;;          converted and clamped, then the four are weighted, as "convert, then resize" does.
;;   blendc: blend where each tap takes its own chroma sample (the taps straddle a chroma pair,
;;          e.g. 2560 -> 640, exactly 4:1): the same, with four chroma samples per pixel.
;;   blendw: blend for steps of 5 to 7 (e.g. 1920 -> 320, exactly 6:1), whose four pixels do not
;;          fit one 16-byte load: pixels 0-1 come from a load at the group, pixels 2-3 from one
;;          2*step bytes on, each picked out with its own masks.
;;
;; Regenerate src/frames/simd/nv12Kernels.ts after editing: npm run build:simd
(module
  (memory (export "memory") 1)

  ;; Every kernel's params (all byte offsets into memory):
  ;;   frame   the NV12 frame
  ;;   rowY    i32 per output row: offset in the frame of its luma row + x0
  ;;   rowY1   the blend kernels: the same for its second luma row
  ;;   rowC    i32 per output row: offset in the frame of its chroma row + cx0
  ;;   step4   4*step: source bytes between groups
  ;;   groups  groups of four output pixels per row
  ;;   rows    output rows
  ;;   outR/outG/outB  first float of each output plane; rows are groups*16 bytes apart
  ;;   coef    f32 x 12: yScale yOffset rv gu gv bu mulR mulG mulB addR addG addB,
  ;;           then v128 x 3: luma mask, U mask, V mask
  (func (export "point")
    (param $frame i32) (param $rowY i32) (param $rowY1 i32) (param $rowC i32) (param $step4 i32) (param $groups i32)
    (param $rows i32) (param $outR i32) (param $outG i32) (param $outB i32) (param $coef i32)
    (local $y i32) (local $g i32) (local $ys i32) (local $cs i32) (local $o i32) (local $rowBytes i32)
    (local $l v128) (local $u v128) (local $v v128) (local $src v128)
    (local $yScale v128) (local $yOffset v128) (local $rv v128) (local $gu v128) (local $gv v128) (local $bu v128)
    (local $mulR v128) (local $mulG v128) (local $mulB v128) (local $addR v128) (local $addG v128) (local $addB v128)
    (local $maskY v128) (local $maskU v128) (local $maskV v128)
    (local $zero v128) (local $max v128) (local $c128 v128)
    (local.set $yScale (f32x4.splat (f32.load offset=0 (local.get $coef))))
    (local.set $yOffset (f32x4.splat (f32.load offset=4 (local.get $coef))))
    (local.set $rv (f32x4.splat (f32.load offset=8 (local.get $coef))))
    (local.set $gu (f32x4.splat (f32.load offset=12 (local.get $coef))))
    (local.set $gv (f32x4.splat (f32.load offset=16 (local.get $coef))))
    (local.set $bu (f32x4.splat (f32.load offset=20 (local.get $coef))))
    (local.set $mulR (f32x4.splat (f32.load offset=24 (local.get $coef))))
    (local.set $mulG (f32x4.splat (f32.load offset=28 (local.get $coef))))
    (local.set $mulB (f32x4.splat (f32.load offset=32 (local.get $coef))))
    (local.set $addR (f32x4.splat (f32.load offset=36 (local.get $coef))))
    (local.set $addG (f32x4.splat (f32.load offset=40 (local.get $coef))))
    (local.set $addB (f32x4.splat (f32.load offset=44 (local.get $coef))))
    (local.set $maskY (v128.load offset=48 (local.get $coef)))
    (local.set $maskU (v128.load offset=64 (local.get $coef)))
    (local.set $maskV (v128.load offset=80 (local.get $coef)))
    (local.set $zero (f32x4.splat (f32.const 0)))
    (local.set $max (f32x4.splat (f32.const 255)))
    (local.set $c128 (f32x4.splat (f32.const 128)))
    (local.set $rowBytes (i32.shl (local.get $groups) (i32.const 4)))
    (local.set $y (i32.const 0))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $y) (local.get $rows)))
        (local.set $ys (i32.add (local.get $frame)
          (i32.load (i32.add (local.get $rowY) (i32.shl (local.get $y) (i32.const 2))))))
        (local.set $cs (i32.add (local.get $frame)
          (i32.load (i32.add (local.get $rowC) (i32.shl (local.get $y) (i32.const 2))))))
        (local.set $o (i32.mul (local.get $y) (local.get $rowBytes)))
        (local.set $g (i32.const 0))
        (block $groupsDone
          (loop $group
            (br_if $groupsDone (i32.ge_u (local.get $g) (local.get $groups)))
            ;; l = yScale * (Y - yOffset)
            (local.set $l (f32x4.mul (local.get $yScale)
              (f32x4.sub
                (f32x4.convert_i32x4_s (i8x16.swizzle (v128.load (local.get $ys)) (local.get $maskY)))
                (local.get $yOffset))))
            (local.set $src (v128.load (local.get $cs)))
            (local.set $u (f32x4.sub (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $src) (local.get $maskU))) (local.get $c128)))
            (local.set $v (f32x4.sub (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $src) (local.get $maskV))) (local.get $c128)))
            ;; channel = clamp(l + chroma terms, 0, 255) * mul + add (pmin/pmax: plain minps/maxps, no NaN here)
            (v128.store (i32.add (local.get $outR) (local.get $o))
              (f32x4.add (local.get $addR) (f32x4.mul (local.get $mulR) (f32x4.pmin (f32x4.pmax
                (f32x4.add (local.get $l) (f32x4.mul (local.get $rv) (local.get $v)))
                (local.get $zero)) (local.get $max)))))
            (v128.store (i32.add (local.get $outG) (local.get $o))
              (f32x4.add (local.get $addG) (f32x4.mul (local.get $mulG) (f32x4.pmin (f32x4.pmax
                (f32x4.add (local.get $l) (f32x4.add (f32x4.mul (local.get $gu) (local.get $u)) (f32x4.mul (local.get $gv) (local.get $v))))
                (local.get $zero)) (local.get $max)))))
            (v128.store (i32.add (local.get $outB) (local.get $o))
              (f32x4.add (local.get $addB) (f32x4.mul (local.get $mulB) (f32x4.pmin (f32x4.pmax
                (f32x4.add (local.get $l) (f32x4.mul (local.get $bu) (local.get $u)))
                (local.get $zero)) (local.get $max)))))
            (local.set $ys (i32.add (local.get $ys) (local.get $step4)))
            (local.set $cs (i32.add (local.get $cs) (local.get $step4)))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (local.set $g (i32.add (local.get $g) (i32.const 1)))
            (br $group)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $row))))

  ;; blend's coef goes on at +96: v128 mask of each group's second luma column, then f32 x 4:
  ;; the tap weights w00 w01 w10 w11.
  (func (export "blend")
    (param $frame i32) (param $rowY i32) (param $rowY1 i32) (param $rowC i32) (param $step4 i32) (param $groups i32)
    (param $rows i32) (param $outR i32) (param $outG i32) (param $outB i32) (param $coef i32)
    (local $y i32) (local $g i32) (local $ys i32) (local $ys1 i32) (local $cs i32) (local $o i32) (local $rowBytes i32)
    (local $l v128) (local $cr v128) (local $cg v128) (local $cb v128) (local $src v128) (local $top v128) (local $bottom v128)
    (local $r v128) (local $gg v128) (local $b v128) (local $w v128)
    (local $yScale v128) (local $yOffset v128) (local $rv v128) (local $gu v128) (local $gv v128) (local $bu v128)
    (local $mulR v128) (local $mulG v128) (local $mulB v128) (local $addR v128) (local $addG v128) (local $addB v128)
    (local $maskA v128) (local $maskB v128) (local $maskU v128) (local $maskV v128)
    (local $w00 v128) (local $w01 v128) (local $w10 v128) (local $w11 v128)
    (local $zero v128) (local $max v128) (local $c128 v128) (local $u v128) (local $v v128)
    (local.set $yScale (f32x4.splat (f32.load offset=0 (local.get $coef))))
    (local.set $yOffset (f32x4.splat (f32.load offset=4 (local.get $coef))))
    (local.set $rv (f32x4.splat (f32.load offset=8 (local.get $coef))))
    (local.set $gu (f32x4.splat (f32.load offset=12 (local.get $coef))))
    (local.set $gv (f32x4.splat (f32.load offset=16 (local.get $coef))))
    (local.set $bu (f32x4.splat (f32.load offset=20 (local.get $coef))))
    (local.set $mulR (f32x4.splat (f32.load offset=24 (local.get $coef))))
    (local.set $mulG (f32x4.splat (f32.load offset=28 (local.get $coef))))
    (local.set $mulB (f32x4.splat (f32.load offset=32 (local.get $coef))))
    (local.set $addR (f32x4.splat (f32.load offset=36 (local.get $coef))))
    (local.set $addG (f32x4.splat (f32.load offset=40 (local.get $coef))))
    (local.set $addB (f32x4.splat (f32.load offset=44 (local.get $coef))))
    (local.set $maskA (v128.load offset=48 (local.get $coef)))
    (local.set $maskU (v128.load offset=64 (local.get $coef)))
    (local.set $maskV (v128.load offset=80 (local.get $coef)))
    (local.set $maskB (v128.load offset=96 (local.get $coef)))
    (local.set $w00 (f32x4.splat (f32.load offset=112 (local.get $coef))))
    (local.set $w01 (f32x4.splat (f32.load offset=116 (local.get $coef))))
    (local.set $w10 (f32x4.splat (f32.load offset=120 (local.get $coef))))
    (local.set $w11 (f32x4.splat (f32.load offset=124 (local.get $coef))))
    (local.set $zero (f32x4.splat (f32.const 0)))
    (local.set $max (f32x4.splat (f32.const 255)))
    (local.set $c128 (f32x4.splat (f32.const 128)))
    (local.set $rowBytes (i32.shl (local.get $groups) (i32.const 4)))
    (local.set $y (i32.const 0))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $y) (local.get $rows)))
        (local.set $ys (i32.add (local.get $frame)
          (i32.load (i32.add (local.get $rowY) (i32.shl (local.get $y) (i32.const 2))))))
        (local.set $ys1 (i32.add (local.get $frame)
          (i32.load (i32.add (local.get $rowY1) (i32.shl (local.get $y) (i32.const 2))))))
        (local.set $cs (i32.add (local.get $frame)
          (i32.load (i32.add (local.get $rowC) (i32.shl (local.get $y) (i32.const 2))))))
        (local.set $o (i32.mul (local.get $y) (local.get $rowBytes)))
        (local.set $g (i32.const 0))
        (block $groupsDone
          (loop $group
            (br_if $groupsDone (i32.ge_u (local.get $g) (local.get $groups)))
            (local.set $src (v128.load (local.get $cs)))
            (local.set $u (f32x4.sub (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $src) (local.get $maskU))) (local.get $c128)))
            (local.set $v (f32x4.sub (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $src) (local.get $maskV))) (local.get $c128)))
            (local.set $cr (f32x4.mul (local.get $rv) (local.get $v)))
            (local.set $cg (f32x4.add (f32x4.mul (local.get $gu) (local.get $u)) (f32x4.mul (local.get $gv) (local.get $v))))
            (local.set $cb (f32x4.mul (local.get $bu) (local.get $u)))
            (local.set $top (v128.load (local.get $ys)))
            (local.set $bottom (v128.load (local.get $ys1)))
            ;; tap (0, 0)
            (local.set $l (f32x4.mul (local.get $yScale) (f32x4.sub
              (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $top) (local.get $maskA))) (local.get $yOffset))))
            (local.set $w (local.get $w00))
            (local.set $r (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cr)) (local.get $zero)) (local.get $max))))
            (local.set $gg (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cg)) (local.get $zero)) (local.get $max))))
            (local.set $b (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cb)) (local.get $zero)) (local.get $max))))
            ;; tap (0, 1)
            (local.set $l (f32x4.mul (local.get $yScale) (f32x4.sub
              (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $top) (local.get $maskB))) (local.get $yOffset))))
            (local.set $w (local.get $w01))
            (local.set $r (f32x4.add (local.get $r) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cr)) (local.get $zero)) (local.get $max)))))
            (local.set $gg (f32x4.add (local.get $gg) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cg)) (local.get $zero)) (local.get $max)))))
            (local.set $b (f32x4.add (local.get $b) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cb)) (local.get $zero)) (local.get $max)))))
            ;; tap (1, 0)
            (local.set $l (f32x4.mul (local.get $yScale) (f32x4.sub
              (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $bottom) (local.get $maskA))) (local.get $yOffset))))
            (local.set $w (local.get $w10))
            (local.set $r (f32x4.add (local.get $r) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cr)) (local.get $zero)) (local.get $max)))))
            (local.set $gg (f32x4.add (local.get $gg) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cg)) (local.get $zero)) (local.get $max)))))
            (local.set $b (f32x4.add (local.get $b) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cb)) (local.get $zero)) (local.get $max)))))
            ;; tap (1, 1)
            (local.set $l (f32x4.mul (local.get $yScale) (f32x4.sub
              (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $bottom) (local.get $maskB))) (local.get $yOffset))))
            (local.set $w (local.get $w11))
            (local.set $r (f32x4.add (local.get $r) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cr)) (local.get $zero)) (local.get $max)))))
            (local.set $gg (f32x4.add (local.get $gg) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cg)) (local.get $zero)) (local.get $max)))))
            (local.set $b (f32x4.add (local.get $b) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cb)) (local.get $zero)) (local.get $max)))))
            (v128.store (i32.add (local.get $outR) (local.get $o)) (f32x4.add (local.get $addR) (f32x4.mul (local.get $mulR) (local.get $r))))
            (v128.store (i32.add (local.get $outG) (local.get $o)) (f32x4.add (local.get $addG) (f32x4.mul (local.get $mulG) (local.get $gg))))
            (v128.store (i32.add (local.get $outB) (local.get $o)) (f32x4.add (local.get $addB) (f32x4.mul (local.get $mulB) (local.get $b))))
            (local.set $ys (i32.add (local.get $ys) (local.get $step4)))
            (local.set $ys1 (i32.add (local.get $ys1) (local.get $step4)))
            (local.set $cs (i32.add (local.get $cs) (local.get $step4)))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (local.set $g (i32.add (local.get $g) (i32.const 1)))
            (br $group)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $row))))

  ;; blendc's coef goes on from blend's at +128: v128 U and V masks of each group's second chroma
  ;; column, then i32: the offset in memory of its second chroma-row table (i32 per output row: the
  ;; chroma row of rowY1's luma row + cx0).
  (func (export "blendc")
    (param $frame i32) (param $rowY i32) (param $rowY1 i32) (param $rowC i32) (param $step4 i32) (param $groups i32)
    (param $rows i32) (param $outR i32) (param $outG i32) (param $outB i32) (param $coef i32)
    (local $y i32) (local $g i32) (local $ys i32) (local $ys1 i32) (local $cs i32) (local $cs1 i32) (local $o i32) (local $rowBytes i32)
    (local $rowC1 i32)
    (local $l v128) (local $srcT v128) (local $srcB v128) (local $top v128) (local $bottom v128)
    (local $r v128) (local $gg v128) (local $b v128) (local $w v128)
    (local $yScale v128) (local $yOffset v128) (local $rv v128) (local $gu v128) (local $gv v128) (local $bu v128)
    (local $mulR v128) (local $mulG v128) (local $mulB v128) (local $addR v128) (local $addG v128) (local $addB v128)
    (local $maskA v128) (local $maskB v128) (local $maskU v128) (local $maskV v128) (local $maskU1 v128) (local $maskV1 v128)
    (local $w00 v128) (local $w01 v128) (local $w10 v128) (local $w11 v128)
    (local $zero v128) (local $max v128) (local $c128 v128)
    (local $u00 v128) (local $v00 v128) (local $u01 v128) (local $v01 v128)
    (local $u10 v128) (local $v10 v128) (local $u11 v128) (local $v11 v128)
    (local.set $yScale (f32x4.splat (f32.load offset=0 (local.get $coef))))
    (local.set $yOffset (f32x4.splat (f32.load offset=4 (local.get $coef))))
    (local.set $rv (f32x4.splat (f32.load offset=8 (local.get $coef))))
    (local.set $gu (f32x4.splat (f32.load offset=12 (local.get $coef))))
    (local.set $gv (f32x4.splat (f32.load offset=16 (local.get $coef))))
    (local.set $bu (f32x4.splat (f32.load offset=20 (local.get $coef))))
    (local.set $mulR (f32x4.splat (f32.load offset=24 (local.get $coef))))
    (local.set $mulG (f32x4.splat (f32.load offset=28 (local.get $coef))))
    (local.set $mulB (f32x4.splat (f32.load offset=32 (local.get $coef))))
    (local.set $addR (f32x4.splat (f32.load offset=36 (local.get $coef))))
    (local.set $addG (f32x4.splat (f32.load offset=40 (local.get $coef))))
    (local.set $addB (f32x4.splat (f32.load offset=44 (local.get $coef))))
    (local.set $maskA (v128.load offset=48 (local.get $coef)))
    (local.set $maskU (v128.load offset=64 (local.get $coef)))
    (local.set $maskV (v128.load offset=80 (local.get $coef)))
    (local.set $maskB (v128.load offset=96 (local.get $coef)))
    (local.set $w00 (f32x4.splat (f32.load offset=112 (local.get $coef))))
    (local.set $w01 (f32x4.splat (f32.load offset=116 (local.get $coef))))
    (local.set $w10 (f32x4.splat (f32.load offset=120 (local.get $coef))))
    (local.set $w11 (f32x4.splat (f32.load offset=124 (local.get $coef))))
    (local.set $maskU1 (v128.load offset=128 (local.get $coef)))
    (local.set $maskV1 (v128.load offset=144 (local.get $coef)))
    (local.set $rowC1 (i32.load offset=160 (local.get $coef)))
    (local.set $zero (f32x4.splat (f32.const 0)))
    (local.set $max (f32x4.splat (f32.const 255)))
    (local.set $c128 (f32x4.splat (f32.const 128)))
    (local.set $rowBytes (i32.shl (local.get $groups) (i32.const 4)))
    (local.set $y (i32.const 0))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $y) (local.get $rows)))
        (local.set $ys (i32.add (local.get $frame)
          (i32.load (i32.add (local.get $rowY) (i32.shl (local.get $y) (i32.const 2))))))
        (local.set $ys1 (i32.add (local.get $frame)
          (i32.load (i32.add (local.get $rowY1) (i32.shl (local.get $y) (i32.const 2))))))
        (local.set $cs (i32.add (local.get $frame)
          (i32.load (i32.add (local.get $rowC) (i32.shl (local.get $y) (i32.const 2))))))
        (local.set $cs1 (i32.add (local.get $frame)
          (i32.load (i32.add (local.get $rowC1) (i32.shl (local.get $y) (i32.const 2))))))
        (local.set $o (i32.mul (local.get $y) (local.get $rowBytes)))
        (local.set $g (i32.const 0))
        (block $groupsDone
          (loop $group
            (br_if $groupsDone (i32.ge_u (local.get $g) (local.get $groups)))
            (local.set $srcT (v128.load (local.get $cs)))
            (local.set $srcB (v128.load (local.get $cs1)))
            (local.set $u00 (f32x4.sub (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $srcT) (local.get $maskU))) (local.get $c128)))
            (local.set $v00 (f32x4.sub (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $srcT) (local.get $maskV))) (local.get $c128)))
            (local.set $u01 (f32x4.sub (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $srcT) (local.get $maskU1))) (local.get $c128)))
            (local.set $v01 (f32x4.sub (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $srcT) (local.get $maskV1))) (local.get $c128)))
            (local.set $u10 (f32x4.sub (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $srcB) (local.get $maskU))) (local.get $c128)))
            (local.set $v10 (f32x4.sub (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $srcB) (local.get $maskV))) (local.get $c128)))
            (local.set $u11 (f32x4.sub (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $srcB) (local.get $maskU1))) (local.get $c128)))
            (local.set $v11 (f32x4.sub (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $srcB) (local.get $maskV1))) (local.get $c128)))
            (local.set $top (v128.load (local.get $ys)))
            (local.set $bottom (v128.load (local.get $ys1)))
            ;; tap (0, 0)
            (local.set $l (f32x4.mul (local.get $yScale) (f32x4.sub
              (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $top) (local.get $maskA))) (local.get $yOffset))))
            (local.set $w (local.get $w00))
            (local.set $r (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (f32x4.mul (local.get $rv) (local.get $v00))) (local.get $zero)) (local.get $max))))
            (local.set $gg (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (f32x4.add (f32x4.mul (local.get $gu) (local.get $u00)) (f32x4.mul (local.get $gv) (local.get $v00)))) (local.get $zero)) (local.get $max))))
            (local.set $b (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (f32x4.mul (local.get $bu) (local.get $u00))) (local.get $zero)) (local.get $max))))
            ;; tap (0, 1)
            (local.set $l (f32x4.mul (local.get $yScale) (f32x4.sub
              (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $top) (local.get $maskB))) (local.get $yOffset))))
            (local.set $w (local.get $w01))
            (local.set $r (f32x4.add (local.get $r) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (f32x4.mul (local.get $rv) (local.get $v01))) (local.get $zero)) (local.get $max)))))
            (local.set $gg (f32x4.add (local.get $gg) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (f32x4.add (f32x4.mul (local.get $gu) (local.get $u01)) (f32x4.mul (local.get $gv) (local.get $v01)))) (local.get $zero)) (local.get $max)))))
            (local.set $b (f32x4.add (local.get $b) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (f32x4.mul (local.get $bu) (local.get $u01))) (local.get $zero)) (local.get $max)))))
            ;; tap (1, 0)
            (local.set $l (f32x4.mul (local.get $yScale) (f32x4.sub
              (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $bottom) (local.get $maskA))) (local.get $yOffset))))
            (local.set $w (local.get $w10))
            (local.set $r (f32x4.add (local.get $r) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (f32x4.mul (local.get $rv) (local.get $v10))) (local.get $zero)) (local.get $max)))))
            (local.set $gg (f32x4.add (local.get $gg) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (f32x4.add (f32x4.mul (local.get $gu) (local.get $u10)) (f32x4.mul (local.get $gv) (local.get $v10)))) (local.get $zero)) (local.get $max)))))
            (local.set $b (f32x4.add (local.get $b) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (f32x4.mul (local.get $bu) (local.get $u10))) (local.get $zero)) (local.get $max)))))
            ;; tap (1, 1)
            (local.set $l (f32x4.mul (local.get $yScale) (f32x4.sub
              (f32x4.convert_i32x4_s (i8x16.swizzle (local.get $bottom) (local.get $maskB))) (local.get $yOffset))))
            (local.set $w (local.get $w11))
            (local.set $r (f32x4.add (local.get $r) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (f32x4.mul (local.get $rv) (local.get $v11))) (local.get $zero)) (local.get $max)))))
            (local.set $gg (f32x4.add (local.get $gg) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (f32x4.add (f32x4.mul (local.get $gu) (local.get $u11)) (f32x4.mul (local.get $gv) (local.get $v11)))) (local.get $zero)) (local.get $max)))))
            (local.set $b (f32x4.add (local.get $b) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (f32x4.mul (local.get $bu) (local.get $u11))) (local.get $zero)) (local.get $max)))))
            (v128.store (i32.add (local.get $outR) (local.get $o)) (f32x4.add (local.get $addR) (f32x4.mul (local.get $mulR) (local.get $r))))
            (v128.store (i32.add (local.get $outG) (local.get $o)) (f32x4.add (local.get $addG) (f32x4.mul (local.get $mulG) (local.get $gg))))
            (v128.store (i32.add (local.get $outB) (local.get $o)) (f32x4.add (local.get $addB) (f32x4.mul (local.get $mulB) (local.get $b))))
            (local.set $ys (i32.add (local.get $ys) (local.get $step4)))
            (local.set $ys1 (i32.add (local.get $ys1) (local.get $step4)))
            (local.set $cs (i32.add (local.get $cs) (local.get $step4)))
            (local.set $cs1 (i32.add (local.get $cs1) (local.get $step4)))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (local.set $g (i32.add (local.get $g) (i32.const 1)))
            (br $group)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $row))))

  ;; blendw's coef: blend's (the masks for pixels 0-1, at +48 A, +64 U, +80 V, +96 B; the
  ;; weights at +112), then the masks for pixels 2-3: +128 A, +144 U, +160 V, +176 B.
  (func (export "blendw")
    (param $frame i32) (param $rowY i32) (param $rowY1 i32) (param $rowC i32) (param $step4 i32) (param $groups i32)
    (param $rows i32) (param $outR i32) (param $outG i32) (param $outB i32) (param $coef i32)
    (local $y i32) (local $g i32) (local $ys i32) (local $ys1 i32) (local $cs i32) (local $o i32) (local $rowBytes i32) (local $half i32)
    (local $l v128) (local $cr v128) (local $cg v128) (local $cb v128) (local $srcLo v128) (local $srcHi v128)
    (local $topLo v128) (local $topHi v128) (local $bottomLo v128) (local $bottomHi v128)
    (local $r v128) (local $gg v128) (local $b v128) (local $w v128)
    (local $yScale v128) (local $yOffset v128) (local $rv v128) (local $gu v128) (local $gv v128) (local $bu v128)
    (local $mulR v128) (local $mulG v128) (local $mulB v128) (local $addR v128) (local $addG v128) (local $addB v128)
    (local $maskA v128) (local $maskB v128) (local $maskU v128) (local $maskV v128)
    (local $maskA2 v128) (local $maskB2 v128) (local $maskU2 v128) (local $maskV2 v128)
    (local $w00 v128) (local $w01 v128) (local $w10 v128) (local $w11 v128)
    (local $zero v128) (local $max v128) (local $c128 v128) (local $u v128) (local $v v128)
    (local.set $yScale (f32x4.splat (f32.load offset=0 (local.get $coef))))
    (local.set $yOffset (f32x4.splat (f32.load offset=4 (local.get $coef))))
    (local.set $rv (f32x4.splat (f32.load offset=8 (local.get $coef))))
    (local.set $gu (f32x4.splat (f32.load offset=12 (local.get $coef))))
    (local.set $gv (f32x4.splat (f32.load offset=16 (local.get $coef))))
    (local.set $bu (f32x4.splat (f32.load offset=20 (local.get $coef))))
    (local.set $mulR (f32x4.splat (f32.load offset=24 (local.get $coef))))
    (local.set $mulG (f32x4.splat (f32.load offset=28 (local.get $coef))))
    (local.set $mulB (f32x4.splat (f32.load offset=32 (local.get $coef))))
    (local.set $addR (f32x4.splat (f32.load offset=36 (local.get $coef))))
    (local.set $addG (f32x4.splat (f32.load offset=40 (local.get $coef))))
    (local.set $addB (f32x4.splat (f32.load offset=44 (local.get $coef))))
    (local.set $maskA (v128.load offset=48 (local.get $coef)))
    (local.set $maskU (v128.load offset=64 (local.get $coef)))
    (local.set $maskV (v128.load offset=80 (local.get $coef)))
    (local.set $maskB (v128.load offset=96 (local.get $coef)))
    (local.set $w00 (f32x4.splat (f32.load offset=112 (local.get $coef))))
    (local.set $w01 (f32x4.splat (f32.load offset=116 (local.get $coef))))
    (local.set $w10 (f32x4.splat (f32.load offset=120 (local.get $coef))))
    (local.set $w11 (f32x4.splat (f32.load offset=124 (local.get $coef))))
    (local.set $maskA2 (v128.load offset=128 (local.get $coef)))
    (local.set $maskU2 (v128.load offset=144 (local.get $coef)))
    (local.set $maskV2 (v128.load offset=160 (local.get $coef)))
    (local.set $maskB2 (v128.load offset=176 (local.get $coef)))
    (local.set $zero (f32x4.splat (f32.const 0)))
    (local.set $max (f32x4.splat (f32.const 255)))
    (local.set $c128 (f32x4.splat (f32.const 128)))
    (local.set $rowBytes (i32.shl (local.get $groups) (i32.const 4)))
    (local.set $half (i32.shr_u (local.get $step4) (i32.const 1)))
    (local.set $y (i32.const 0))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $y) (local.get $rows)))
        (local.set $ys (i32.add (local.get $frame)
          (i32.load (i32.add (local.get $rowY) (i32.shl (local.get $y) (i32.const 2))))))
        (local.set $ys1 (i32.add (local.get $frame)
          (i32.load (i32.add (local.get $rowY1) (i32.shl (local.get $y) (i32.const 2))))))
        (local.set $cs (i32.add (local.get $frame)
          (i32.load (i32.add (local.get $rowC) (i32.shl (local.get $y) (i32.const 2))))))
        (local.set $o (i32.mul (local.get $y) (local.get $rowBytes)))
        (local.set $g (i32.const 0))
        (block $groupsDone
          (loop $group
            (br_if $groupsDone (i32.ge_u (local.get $g) (local.get $groups)))
            (local.set $srcLo (v128.load (local.get $cs)))
            (local.set $srcHi (v128.load (i32.add (local.get $cs) (local.get $half))))
            (local.set $u (f32x4.sub (f32x4.convert_i32x4_s (v128.or (i8x16.swizzle (local.get $srcLo) (local.get $maskU)) (i8x16.swizzle (local.get $srcHi) (local.get $maskU2)))) (local.get $c128)))
            (local.set $v (f32x4.sub (f32x4.convert_i32x4_s (v128.or (i8x16.swizzle (local.get $srcLo) (local.get $maskV)) (i8x16.swizzle (local.get $srcHi) (local.get $maskV2)))) (local.get $c128)))
            (local.set $cr (f32x4.mul (local.get $rv) (local.get $v)))
            (local.set $cg (f32x4.add (f32x4.mul (local.get $gu) (local.get $u)) (f32x4.mul (local.get $gv) (local.get $v))))
            (local.set $cb (f32x4.mul (local.get $bu) (local.get $u)))
            (local.set $topLo (v128.load (local.get $ys)))
            (local.set $topHi (v128.load (i32.add (local.get $ys) (local.get $half))))
            (local.set $bottomLo (v128.load (local.get $ys1)))
            (local.set $bottomHi (v128.load (i32.add (local.get $ys1) (local.get $half))))
            ;; tap (0, 0)
            (local.set $l (f32x4.mul (local.get $yScale) (f32x4.sub
              (f32x4.convert_i32x4_s (v128.or (i8x16.swizzle (local.get $topLo) (local.get $maskA)) (i8x16.swizzle (local.get $topHi) (local.get $maskA2)))) (local.get $yOffset))))
            (local.set $w (local.get $w00))
            (local.set $r (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cr)) (local.get $zero)) (local.get $max))))
            (local.set $gg (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cg)) (local.get $zero)) (local.get $max))))
            (local.set $b (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cb)) (local.get $zero)) (local.get $max))))
            ;; tap (0, 1)
            (local.set $l (f32x4.mul (local.get $yScale) (f32x4.sub
              (f32x4.convert_i32x4_s (v128.or (i8x16.swizzle (local.get $topLo) (local.get $maskB)) (i8x16.swizzle (local.get $topHi) (local.get $maskB2)))) (local.get $yOffset))))
            (local.set $w (local.get $w01))
            (local.set $r (f32x4.add (local.get $r) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cr)) (local.get $zero)) (local.get $max)))))
            (local.set $gg (f32x4.add (local.get $gg) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cg)) (local.get $zero)) (local.get $max)))))
            (local.set $b (f32x4.add (local.get $b) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cb)) (local.get $zero)) (local.get $max)))))
            ;; tap (1, 0)
            (local.set $l (f32x4.mul (local.get $yScale) (f32x4.sub
              (f32x4.convert_i32x4_s (v128.or (i8x16.swizzle (local.get $bottomLo) (local.get $maskA)) (i8x16.swizzle (local.get $bottomHi) (local.get $maskA2)))) (local.get $yOffset))))
            (local.set $w (local.get $w10))
            (local.set $r (f32x4.add (local.get $r) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cr)) (local.get $zero)) (local.get $max)))))
            (local.set $gg (f32x4.add (local.get $gg) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cg)) (local.get $zero)) (local.get $max)))))
            (local.set $b (f32x4.add (local.get $b) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cb)) (local.get $zero)) (local.get $max)))))
            ;; tap (1, 1)
            (local.set $l (f32x4.mul (local.get $yScale) (f32x4.sub
              (f32x4.convert_i32x4_s (v128.or (i8x16.swizzle (local.get $bottomLo) (local.get $maskB)) (i8x16.swizzle (local.get $bottomHi) (local.get $maskB2)))) (local.get $yOffset))))
            (local.set $w (local.get $w11))
            (local.set $r (f32x4.add (local.get $r) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cr)) (local.get $zero)) (local.get $max)))))
            (local.set $gg (f32x4.add (local.get $gg) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cg)) (local.get $zero)) (local.get $max)))))
            (local.set $b (f32x4.add (local.get $b) (f32x4.mul (local.get $w) (f32x4.pmin (f32x4.pmax (f32x4.add (local.get $l) (local.get $cb)) (local.get $zero)) (local.get $max)))))
            (v128.store (i32.add (local.get $outR) (local.get $o)) (f32x4.add (local.get $addR) (f32x4.mul (local.get $mulR) (local.get $r))))
            (v128.store (i32.add (local.get $outG) (local.get $o)) (f32x4.add (local.get $addG) (f32x4.mul (local.get $mulG) (local.get $gg))))
            (v128.store (i32.add (local.get $outB) (local.get $o)) (f32x4.add (local.get $addB) (f32x4.mul (local.get $mulB) (local.get $b))))
            (local.set $ys (i32.add (local.get $ys) (local.get $step4)))
            (local.set $ys1 (i32.add (local.get $ys1) (local.get $step4)))
            (local.set $cs (i32.add (local.get $cs) (local.get $step4)))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (local.set $g (i32.add (local.get $g) (i32.const 1)))
            (br $group)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $row))))

  ;; Packing, after a kernel: the three planes it wrote (given in output channel order, so the
  ;; caller's channel order is kept), `n` groups of four pixels each, turned into another layout
  ;; or dtype at $out. Each writes whole groups; a row's last group may hold up to three pixels
  ;; past its end, which the caller does not copy out. uint8 takes values the kernel clamped to
  ;; 0-255 (identity scale) and rounds them half to even, as Uint8ClampedArray stores do.

  ;; float32, interleaved (NHWC): 12 floats per group.
  (func (export "interleave") (param $in0 i32) (param $in1 i32) (param $in2 i32) (param $out i32) (param $n i32)
    (local $a v128) (local $b v128) (local $c v128) (local $end i32)
    (local.set $end (i32.add (local.get $in0) (i32.shl (local.get $n) (i32.const 4))))
    (block $done
      (loop $group
        (br_if $done (i32.ge_u (local.get $in0) (local.get $end)))
        (local.set $a (v128.load (local.get $in0)))
        (local.set $b (v128.load (local.get $in1)))
        (local.set $c (v128.load (local.get $in2)))
        ;; [a0 b0 c0 a1] [b1 c1 a2 b2] [c2 a3 b3 c3], two shuffles each
        (v128.store offset=0 (local.get $out)
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 8 9 10 11
            (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a) (local.get $b))
            (local.get $c)))
        (v128.store offset=16 (local.get $out)
          (i8x16.shuffle 0 1 2 3 4 5 6 7 24 25 26 27 8 9 10 11
            (i8x16.shuffle 4 5 6 7 20 21 22 23 8 9 10 11 24 25 26 27 (local.get $b) (local.get $c))
            (local.get $a)))
        (v128.store offset=32 (local.get $out)
          (i8x16.shuffle 24 25 26 27 0 1 2 3 4 5 6 7 28 29 30 31
            (i8x16.shuffle 12 13 14 15 28 29 30 31 0 1 2 3 0 1 2 3 (local.get $a) (local.get $b))
            (local.get $c)))
        (local.set $in0 (i32.add (local.get $in0) (i32.const 16)))
        (local.set $in1 (i32.add (local.get $in1) (i32.const 16)))
        (local.set $in2 (i32.add (local.get $in2) (i32.const 16)))
        (local.set $out (i32.add (local.get $out) (i32.const 48)))
        (br $group))))

  ;; uint8, one plane (NCHW): 4 bytes per group.
  (func (export "bytes") (param $in i32) (param $out i32) (param $n i32)
    (local $w v128) (local $end i32)
    (local.set $end (i32.add (local.get $in) (i32.shl (local.get $n) (i32.const 4))))
    (block $done
      (loop $group
        (br_if $done (i32.ge_u (local.get $in) (local.get $end)))
        (local.set $w (i32x4.trunc_sat_f32x4_u (f32x4.nearest (v128.load (local.get $in)))))
        (local.set $w (i16x8.narrow_i32x4_u (local.get $w) (local.get $w)))
        (v128.store32_lane 0 (local.get $out) (i8x16.narrow_i16x8_u (local.get $w) (local.get $w)))
        (local.set $in (i32.add (local.get $in) (i32.const 16)))
        (local.set $out (i32.add (local.get $out) (i32.const 4)))
        (br $group))))

  ;; uint8, interleaved (NHWC): 12 bytes per group, stored 16 at a time (so 4 bytes of room after).
  (func (export "interleaveBytes") (param $in0 i32) (param $in1 i32) (param $in2 i32) (param $out i32) (param $n i32)
    (local $ab v128) (local $cc v128) (local $end i32)
    (local.set $end (i32.add (local.get $in0) (i32.shl (local.get $n) (i32.const 4))))
    (block $done
      (loop $group
        (br_if $done (i32.ge_u (local.get $in0) (local.get $end)))
        (local.set $ab (i16x8.narrow_i32x4_u
          (i32x4.trunc_sat_f32x4_u (f32x4.nearest (v128.load (local.get $in0))))
          (i32x4.trunc_sat_f32x4_u (f32x4.nearest (v128.load (local.get $in1))))))
        (local.set $cc (i32x4.trunc_sat_f32x4_u (f32x4.nearest (v128.load (local.get $in2)))))
        (local.set $cc (i16x8.narrow_i32x4_u (local.get $cc) (local.get $cc)))
        ;; bytes a0-a3 b0-b3 c0-c3 c0-c3 -> a0 b0 c0 a1 b1 c1 a2 b2 c2 a3 b3 c3
        (v128.store (local.get $out)
          (i8x16.shuffle 0 4 8 1 5 9 2 6 10 3 7 11 12 13 14 15
            (i8x16.narrow_i16x8_u (local.get $ab) (local.get $cc))
            (local.get $ab)))
        (local.set $in0 (i32.add (local.get $in0) (i32.const 16)))
        (local.set $in1 (i32.add (local.get $in1) (i32.const 16)))
        (local.set $in2 (i32.add (local.get $in2) (i32.const 16)))
        (local.set $out (i32.add (local.get $out) (i32.const 12)))
        (br $group)))))
