package server

func (s *Server) routesMore() {}
