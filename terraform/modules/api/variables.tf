variable "name" {
  description = "Prefix of every resource name (<name_prefix>-<environment>)."
  type        = string
}

variable "region" {
  description = "AWS region of the deployment."
  type        = string
}

variable "account_id" {
  description = "Account the resources live in (for ARNs and conditions)."
  type        = string
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, ...), for ARNs."
  type        = string
}

variable "image_tag" {
  description = "Tag of the API image in this module's ECR repository (the Dockerfile's lambda target)."
  type        = string
}

variable "environment" {
  description = "ANALYTICS_* variables of the deployment the app reads (its settings)."
  type        = map(string)
}

variable "lake_bucket_arn" {
  description = "ARN of the lake bucket; the function reads only the Parquet of var.tables."
  type        = string
}

variable "results_bucket_arn" {
  description = "ARN of the Athena results bucket."
  type        = string
}

variable "query_results_policy_json" {
  description = "IAM policy (JSON) that lets an Athena querier list, read and write the workgroup's results prefix."
  type        = string
}

variable "athena_workgroup_arn" {
  description = "The workgroup the function's queries run in."
  type        = string
}

variable "glue_database" {
  description = "Glue database of the lake's tables."
  type        = string
}

variable "tables" {
  description = "Tables the API queries; the function may read these and no others."
  type        = set(string)
}

variable "memory_mb" {
  description = "Memory of the function (CPU grows with it); the app imports pyarrow and DuckDB."
  type        = number
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for (and capping) the function."
  type        = number
}

variable "throttling_rate_limit" {
  description = "Steady requests per second the API stage lets through."
  type        = number
}

variable "throttling_burst_limit" {
  description = "Requests the API stage lets through in a burst."
  type        = number
}

variable "log_retention_days" {
  description = "Days the function's and the API's access logs are kept."
  type        = number
}

variable "force_destroy" {
  description = "Let destroy delete the image repository while it holds images."
  type        = bool
}
