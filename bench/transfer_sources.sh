# Sourced by bench/transferability.sh and bench/domain_shift.sh (with G, W,
# DATA and FM set): graft's two pretrained ResNet-20 sources and the AT&T
# faces split they share, each made only when missing.
#   $W/src-fmnist   Fashion-MNIST classes 0-4, 2000 images each, 4 epochs
#   $W/src-cifar    the CIFAR-10 test JPEGs, 6 epochs
#   $W/att/{train,test}/sN   images 1-7 of each person to train, 8-10 to test (links)
[ -f "$W/src-fmnist/model.safetensors" ] ||
  $G pretrain --data $FM/train-images-idx3-ubyte.gz --classes 0,1,2,3,4 --per-class 2000 \
    --backbone resnet20 --epochs 4 --out "$W/src-fmnist" --overwrite --quiet >/dev/null
[ -f "$W/src-cifar/model.safetensors" ] ||
  $G pretrain --data "$DATA/cifar10_test_jpg" --backbone resnet20 --epochs 6 \
    --out "$W/src-cifar" --overwrite --quiet >/dev/null
if [ ! -d "$W/att/test" ]; then
  for s in "$DATA"/att_faces/s*; do
    p=$(basename "$s")
    mkdir -p "$W/att/train/$p" "$W/att/test/$p"
    for i in 1 2 3 4 5 6 7; do ln -sf "$s/$i.pgm" "$W/att/train/$p/$i.pgm"; done
    for i in 8 9 10; do ln -sf "$s/$i.pgm" "$W/att/test/$p/$i.pgm"; done
  done
fi
