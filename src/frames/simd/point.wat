;; NV12 -> planar float32, one luma and one chroma sample per output pixel (the point kernel of
;; preprocess.ts), four output pixels per step with WebAssembly SIMD.
;;
;; Source columns are x0 + step*x (step <= 5), so the four luma bytes of a group sit within one
;; 16-byte load at x0 + 4*step*k, and its four chroma pairs within one 16-byte load at
;; cx0 + 4*step*k (cx0 = x0 rounded down to even); swizzle masks pick them out. Loads may reach
;; up to 15 bytes past a row's last used byte: the caller leaves that much room after the frame.
;;
;; Regenerate src/frames/simd/pointKernel.ts after editing: node scripts/build-simd.mjs
(module
  (memory (export "memory") 1)

  ;; params (all byte offsets into memory):
  ;;   frame   the NV12 frame
  ;;   rowY    i32 per output row: offset in the frame of its luma row + x0
  ;;   rowC    i32 per output row: offset in the frame of its chroma row + cx0
  ;;   step4   4*step: source bytes between groups
  ;;   groups  groups of four output pixels per row
  ;;   rows    output rows
  ;;   outR/outG/outB  first float of each output plane; rows are groups*16 bytes apart
  ;;   coef    f32 x 12: yScale yOffset rv gu gv bu mulR mulG mulB addR addG addB,
  ;;           then v128 x 3: luma mask, U mask, V mask
  (func (export "point")
    (param $frame i32) (param $rowY i32) (param $rowC i32) (param $step4 i32) (param $groups i32) (param $rows i32)
    (param $outR i32) (param $outG i32) (param $outB i32) (param $coef i32)
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
        (br $row)))))
