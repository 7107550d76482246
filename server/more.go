package server

func (s *Server) routesMore() {
	s.handle("POST /v1/handoffs", agent, s.handleHandoff)
	s.handle("POST /v1/capabilities", agent, s.handleCapability)
	s.handle("POST /v1/approvals", agent, s.handleApproval)
	s.handle("GET /v1/approvals/pending", agent, s.handlePending)
}
