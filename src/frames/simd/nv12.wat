;; NV12 -> planar float32 kernels of preprocess.ts in WebAssembly SIMD, four output pixels per step.
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
;;
;; Regenerate src/frames/simd/nv12Kernels.ts after editing: npm run build:simd
(module
  (memory (export "memory") 1)

  ;; Both kernels' params (all byte offsets into memory):
  ;;   frame   the NV12 frame
  ;;   rowY    i32 per output row: offset in the frame of its luma row + x0
  ;;   rowY1   blend only: the same for its second luma row
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
        (br $row)))))
