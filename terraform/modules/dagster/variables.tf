variable "name" {
  description = "Prefix of every resource name (<name_prefix>-<environment>)."
  type        = string
}

variable "vpc_id" {
  description = "VPC the Dagster tasks, the database and the load balancer live in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two or more Availability Zones) with a route to the AWS APIs (NAT or VPC endpoints)."
  type        = list(string)
}

variable "load_balancer_subnet_ids" {
  description = "Subnets of the load balancer: private ones for the internal default, public ones with authentication."
  type        = list(string)
}

variable "allowed_cidr_blocks" {
  description = "Networks that may reach the load balancer (the webserver UI)."
  type        = list(string)
}

variable "task_role_arn" {
  description = "Role the Dagster processes and runs assume (the pipeline role)."
  type        = string
}

variable "task_role_name" {
  description = "Name of that role, to which the run launcher's and the alerts' permissions are attached."
  type        = string
}

variable "image_tag" {
  description = "Tag of the image in the ECR repository the services run."
  type        = string
}

variable "environment" {
  description = "Plain environment variables of every container (the ANALYTICS_* settings)."
  type        = map(string)
}

variable "authentication" {
  description = "OIDC or Cognito authentication on an HTTPS listener; null keeps the load balancer internal and plain HTTP."
  type = object({
    certificate_arn = string
    oidc = optional(object({
      issuer                 = string
      authorization_endpoint = string
      token_endpoint         = string
      user_info_endpoint     = string
      client_id              = string
      client_secret          = string
    }))
    cognito = optional(object({
      user_pool_arn       = string
      user_pool_client_id = string
      user_pool_domain    = string
    }))
  })
  default = null
}

variable "alert_email" {
  description = "Address subscribed to the alerts topic (it must confirm); null for none."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Days the containers' CloudWatch logs are kept."
  type        = number
}

variable "db_instance_class" {
  description = "RDS instance class of the Dagster database."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse to delete the Dagster database and load balancer (turn off before destroying)."
  type        = bool
}

variable "db_backup_retention_days" {
  description = "Days of automated database backups."
  type        = number
}

variable "force_destroy" {
  description = "Let destroy delete the image repository with its images and skip the final database snapshot."
  type        = bool
}

variable "compute_logs_bucket" {
  description = "Bucket of the runs' compute logs (the lake bucket, under compute_logs_prefix)."
  type        = string
}

variable "compute_logs_prefix" {
  description = "Key prefix of the runs' compute logs."
  type        = string
}
