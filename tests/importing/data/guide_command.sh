# The full training command from the user's LoRA guide (same flags and values, our own layout).
accelerate launch --num_cpu_threads_per_process=2 "./sdxl_train_network.py" \
  --lowram --pretrained_model_name_or_path="/ponydiffusers/" \
  --train_data_dir="/training_dir" --resolution="1024,1024" --output_dir="/output_dir" \
  --enable_bucket --min_bucket_reso=256 --max_bucket_reso=1024 \
  --network_alpha=4 --save_model_as="safetensors" --network_module="lycoris.kohya" \
  --network_args "preset=full" "conv_dim=256" "conv_alpha=4" "use_tucker=False" "use_scalar=False" \
      "rank_dropout_scale=False" "algo=locon" "train_norm=False" \
      "block_dims=8,8,8,8,8,8,8,8,8,8,8,8,8,8,8,8,8,8,8,8,8,8,8,8,8" \
      "block_alphas=0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625,0.0625" \
  --network_dropout=0 --lr_scheduler="cosine" --learning_rate=0.0001 --unet_lr=0.0001 \
  --text_encoder_lr=0.0001 --network_dim=8 --output_name="yifftoolkit" --scale_weight_norms=1 \
  --no_half_vae --save_every_n_epochs=50 --mixed_precision="fp16" --save_precision="fp16" \
  --caption_extension=".txt" --cache_latents --cache_latents_to_disk --optimizer_type="AdamW" \
  --max_grad_norm=1 --keep_tokens=1 --max_data_loader_n_workers=8 --bucket_reso_steps=32 \
  --multires_noise_iterations=10 --multires_noise_discount=0.1 --log_prefix=xl-locon \
  --gradient_accumulation_steps=6 --gradient_checkpointing --train_batch_size=8 \
  --dataset_repeats=0 --max_train_steps=400 --shuffle_caption --sdpa \
  --sample_prompts=/training_dir/sample-prompts.txt --sample_sampler="euler_a" --sample_every_n_steps=100
