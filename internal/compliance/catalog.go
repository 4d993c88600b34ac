package compliance

// Control is one criterion of the AICPA Trust Services Criteria (2017,
// points of focus revised 2022) and how Gatehouse evidences it.
type Control struct {
	// ID is the criterion as written by the AICPA, e.g. "CC6.1".
	ID string `json:"id"`
	// Category is the trust services category: security (common
	// criteria), availability, confidentiality or processing integrity.
	Category string `json:"category"`
	// Title is the criterion's subject, in short.
	Title string `json:"title"`
	// Criterion paraphrases what the criterion asks of the entity.
	Criterion string `json:"criterion"`
	// Checks are the IDs of the checks that decide it (see Checks).
	Checks []string `json:"checks"`
}

// Categories of the Trust Services Criteria.
const (
	CategorySecurity            = "security"
	CategoryAvailability        = "availability"
	CategoryConfidentiality     = "confidentiality"
	CategoryProcessingIntegrity = "processing_integrity"
)

// Catalog returns the controls Gatehouse evidences, in criterion order.
// A fresh slice each call: callers may modify it.
func Catalog() []Control {
	return []Control{
		{ID: "CC6.1", Category: CategorySecurity, Title: "Logical access security",
			Criterion: "The entity implements logical access security software, infrastructure and architectures over protected information assets to protect them from security events.",
			Checks:    []string{"routes.authenticated", "policy.deny_by_default", "credentials.hashed", "secrets.rotation"}},
		{ID: "CC6.2", Category: CategorySecurity, Title: "Registration, authorization and removal of users",
			Criterion: "Prior to issuing credentials and granting access, the entity registers and authorizes users; access is removed when no longer authorized.",
			Checks:    []string{"credentials.rotation_age", "credentials.admin_unused", "revocation.propagation", "reviews.current"}},
		{ID: "CC6.3", Category: CategorySecurity, Title: "Role-based access and least privilege",
			Criterion: "The entity authorizes, modifies or removes access based on roles, responsibilities and the system design, considering least privilege and segregation of duties.",
			Checks:    []string{"credentials.admin_unused", "reviews.current"}},
		{ID: "CC6.5", Category: CategorySecurity, Title: "Disposal of protected information",
			Criterion: "The entity discontinues logical and physical protections over assets only after the ability to read or recover data has been diminished.",
			Checks:    []string{"audit.retention", "backup.retention"}},
		{ID: "CC6.6", Category: CategorySecurity, Title: "Protection against threats from outside the system boundary",
			Criterion: "The entity implements logical access security measures to protect against threats from sources outside its system boundaries.",
			Checks:    []string{"limits.rate_and_lockout", "headers.security"}},
		{ID: "CC6.7", Category: CategorySecurity, Title: "Restriction of transmission, movement and removal of information",
			Criterion: "The entity restricts the transmission, movement and removal of information to authorized users and processes, and protects it during transmission.",
			Checks:    []string{"tls.listeners"}},
		{ID: "CC6.8", Category: CategorySecurity, Title: "Prevention or detection of unauthorized or malicious software",
			Criterion: "The entity implements controls to prevent or detect and act upon the introduction of unauthorized or malicious software.",
			Checks:    []string{"headers.security", "dependencies.scan"}},
		{ID: "CC7.1", Category: CategorySecurity, Title: "Detection of configuration changes and vulnerabilities",
			Criterion: "To meet its objectives, the entity uses detection and monitoring procedures to identify changes to configurations that introduce new vulnerabilities, and susceptibilities to newly discovered vulnerabilities.",
			Checks:    []string{"changes.audited", "dependencies.scan"}},
		{ID: "CC7.2", Category: CategorySecurity, Title: "Monitoring of system components for anomalies",
			Criterion: "The entity monitors system components and their operation for anomalies indicative of malicious acts, natural disasters and errors, and analyzes them to determine whether they are security events.",
			Checks:    []string{"audit.verifies", "audit.checkpoint_fresh"}},
		{ID: "CC7.3", Category: CategorySecurity, Title: "Evaluation of security events",
			Criterion: "The entity evaluates security events to determine whether they could or have resulted in a failure to meet its objectives (security incidents) and, if so, takes actions to prevent or address such failures.",
			Checks:    []string{"incidents.reviewed"}},
		{ID: "CC7.4", Category: CategorySecurity, Title: "Response to security incidents",
			Criterion: "The entity responds to identified security incidents by executing a defined incident response program to understand, contain, remediate and communicate security incidents.",
			Checks:    []string{"incidents.reviewed", "revocation.propagation"}},
		{ID: "CC7.5", Category: CategorySecurity, Title: "Recovery from security incidents",
			Criterion: "The entity identifies, develops and implements activities to recover from identified security incidents.",
			Checks:    []string{"incidents.reviewed"}},
		{ID: "CC8.1", Category: CategorySecurity, Title: "Change management",
			Criterion: "The entity authorizes, designs, develops or acquires, configures, documents, tests, approves and implements changes to infrastructure, data, software and procedures.",
			Checks:    []string{"changes.audited", "policy.deny_by_default"}},
		{ID: "A1.1", Category: CategoryAvailability, Title: "Capacity management",
			Criterion: "The entity maintains, monitors and evaluates current processing capacity and use of system components to manage capacity demand and to enable additional capacity to help meet its objectives.",
			Checks:    []string{"limits.rate_and_lockout"}},
		{ID: "A1.2", Category: CategoryAvailability, Title: "Environmental protections, software, data backup and recovery infrastructure",
			Criterion: "The entity authorizes, designs, develops or acquires, implements, operates, approves, maintains and monitors environmental protections, software, data backup processes and recovery infrastructure to meet its objectives.",
			Checks:    []string{"backup.recent"}},
		{ID: "A1.3", Category: CategoryAvailability, Title: "Recovery plan testing",
			Criterion: "The entity tests recovery plan procedures supporting system recovery to meet its objectives.",
			Checks:    []string{"backup.restore_tested"}},
		{ID: "C1.1", Category: CategoryConfidentiality, Title: "Identification and maintenance of confidential information",
			Criterion: "The entity identifies and maintains confidential information to meet the entity's objectives related to confidentiality.",
			Checks:    []string{"redaction.sensitive_routes", "credentials.hashed"}},
		{ID: "C1.2", Category: CategoryConfidentiality, Title: "Disposal of confidential information",
			Criterion: "The entity disposes of confidential information to meet the entity's objectives related to confidentiality.",
			Checks:    []string{"audit.retention", "backup.retention"}},
		{ID: "PI1.1", Category: CategoryProcessingIntegrity, Title: "Information about processing objectives",
			Criterion: "The entity obtains or generates, uses and communicates relevant, quality information regarding the objectives related to processing, including definitions of data processed and product and service specifications.",
			Checks:    []string{"routes.authenticated"}},
		{ID: "PI1.2", Category: CategoryProcessingIntegrity, Title: "System inputs",
			Criterion: "The entity implements policies and procedures over system inputs, including controls over completeness and accuracy, to result in products, services and reporting that meet its objectives.",
			Checks:    []string{"limits.rate_and_lockout"}},
		{ID: "PI1.3", Category: CategoryProcessingIntegrity, Title: "System processing",
			Criterion: "The entity implements policies and procedures over system processing to result in products, services and reporting that meet its objectives.",
			Checks:    []string{"policy.deny_by_default"}},
		{ID: "PI1.4", Category: CategoryProcessingIntegrity, Title: "System outputs",
			Criterion: "The entity implements policies and procedures to make available or deliver output completely, accurately and timely in accordance with specifications.",
			Checks:    []string{"redaction.sensitive_routes"}},
		{ID: "PI1.5", Category: CategoryProcessingIntegrity, Title: "Stored inputs and outputs",
			Criterion: "The entity implements policies and procedures to store inputs, items in processing and outputs completely, accurately and timely in accordance with system specifications.",
			Checks:    []string{"audit.verifies"}},
	}
}

// Correction states one criterion commonly mislabelled in internal control
// documents, and the criterion this report files it under instead.
type Correction struct {
	Topic string `json:"topic"`
	// Mislabel is where such documents commonly file the topic.
	Mislabel string `json:"commonly_filed_under"`
	// Criteria are the criteria as written that the topic belongs to.
	Criteria []string `json:"criteria"`
	Why      string   `json:"why"`
}

// Corrections returns the mislabellings the report corrects.
func Corrections() []Correction {
	return []Correction{
		{Topic: "Change management", Mislabel: "CC7.2", Criteria: []string{"CC8.1"},
			Why: "CC8.1 is the change management criterion (authorize, test, approve and implement changes); CC7.2 is monitoring system components for anomalies."},
		{Topic: "System operations and monitoring", Mislabel: "CC8.1", Criteria: []string{"CC7.1", "CC7.2"},
			Why: "Detection and monitoring of system operation are CC7.1 and CC7.2 (the CC7 series, system operations); CC8.1 covers changes only."},
		{Topic: "Vulnerability scanning", Mislabel: "CC9.2", Criteria: []string{"CC7.1"},
			Why: "CC7.1 names the identification of susceptibilities to newly discovered vulnerabilities; CC9.2 is vendor and business partner risk management."},
		{Topic: "Data destruction and disposal", Mislabel: "CC6.7", Criteria: []string{"CC6.5", "C1.2"},
			Why: "CC6.5 (discontinuing protections only after data cannot be recovered) and C1.2 (disposal of confidential information) cover disposal; CC6.7 is restricting transmission, movement and removal of information."},
		{Topic: "Backups", Mislabel: "A1.3", Criteria: []string{"A1.2"},
			Why: "A1.2 names data backup processes and recovery infrastructure; A1.3 is testing the recovery plan, which the restore tests evidence."},
	}
}
