package server

func (s *Server) routesMore() {
	s.handle("POST /v1/handoffs", agent, s.handleHandoff)
	s.handle("POST /v1/capabilities", agent, s.handleCapability)
	s.handle("POST /v1/approvals", agent, s.handleApproval)
	s.handle("GET /v1/approvals/pending", agent, s.handlePending)
	s.handle("POST /v1/revocations", agent, s.handleRevoke)
	s.handle("GET /v1/revocations/stream", agent, s.handleStream)
	s.handle("GET /v1/validity/{digest}", agent, s.handleValidity)
	s.handle("POST /v1/receipts", agent, s.handleSignReceipt)
	s.handle("POST /v1/receipts/verify", verifying, s.handleVerifyReceipt)
	s.handle("GET /v1/audit/checkpoint", auditing, s.handleAuditCheckpoint)
	s.handle("GET /v1/audit/proof", auditing, s.handleAuditProof)
	s.handle("GET /v1/audit/export", auditing, s.handleAuditExport)
	s.handle("GET /v1/registry/agents", admin, s.handleListAgents)
	s.handle("POST /v1/registry/agents", admin, s.handleAddAgent)
	s.handle("POST /v1/registry/agents/{id}/rotate", admin, s.handleRotateAgent)
	s.handle("POST /v1/registry/agents/{id}/revoke", admin, s.handleRevokeAgent)
}
