variable "name" {
  description = "Bucket name (global across AWS)."
  type        = string
}

variable "access_log_bucket" {
  description = "Bucket receiving this bucket's S3 server access logs, under s3/<name>/. Its policy must already let logging.s3.amazonaws.com write."
  type        = string
}

variable "expire_prefix" {
  description = "Objects under this prefix expire after expire_days (\"\" for the whole bucket); null for no expiration."
  type        = string
  default     = null
}

variable "expire_days" {
  description = "Days after which objects under expire_prefix expire."
  type        = number
  default     = null

  validation {
    condition     = var.expire_days == null || try(var.expire_days >= 1, false)
    error_message = "expire_days must be at least 1."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days an overwritten or deleted object version is kept."
  type        = number
}

variable "abort_incomplete_multipart_days" {
  description = "Days after which an incomplete multipart upload is aborted."
  type        = number
}

variable "force_destroy" {
  description = "Let terraform destroy delete the bucket while it still holds objects."
  type        = bool
  default     = false
}
