package netpoll

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

const (
	// eventBatch is how many events one epoll_wait returns at most.
	eventBatch = 256
	// wakeID is the user data of the shutdown eventfd; registration ids
	// start at 1.
	wakeID = 0
	// armEvents are the events of a registration: readable, or the peer shut
	// down or reset (EPOLLERR and EPOLLHUP are always reported); one-shot and
	// level-triggered.
	armEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT
)

// Supported reports whether this platform has the poller (Linux: epoll).
// Elsewhere [New] returns an error and callers keep one blocking reader
// goroutine per connection.
func Supported() bool { return true }

// Poller waits for readability of many connections with one goroutine (in
// epoll_wait) and calls each connection's onReady on a new goroutine when it
// becomes readable or its peer closed or reset it. Registrations are one-shot
// (EPOLLIN|EPOLLRDHUP|EPOLLONESHOT, level-triggered): after onReady is called
// the registration is disarmed until [Registration.Arm].
//
// The epoll user data of a registration is an id from a counter, never an fd
// or a pointer; the wait loop looks ids up in a map, so a late event for a
// registration that was removed, or whose fd number now belongs to another
// socket, is dropped.
//
// All methods are safe for concurrent use, including from onReady.
//
// Lock order: Poller.mu, then Registration.ctlMu, then the fd reference
// taken by RawConn.Control.
type Poller struct {
	epfd int      // epoll instance; closed by Close (through file) after the loop exited
	file *os.File // epfd as a file in Go's own netpoller: the wait loop parks there
	wake int      // eventfd in the epoll set; Close writes it to stop the loop

	nextID atomic.Uint64
	closed atomic.Bool // set under mu; read without it by fire

	mu   sync.RWMutex
	regs map[uint64]*Registration // guarded by mu

	loopErr   error         // why the wait loop stopped early; written before done closes
	done      chan struct{} // closed when the wait loop has returned
	closeOnce sync.Once
	closeErr  error
}

// Registration is one connection registered with a [Poller]. Its methods are
// safe for concurrent use.
type Registration struct {
	p       *Poller
	c       *Conn
	id      uint64
	onReady func()
	dead    atomic.Bool   // set under p.mu by Deregister
	armSeq  atomic.Uint64 // bumped by Arm, read by fire: a happens-before edge the race detector can see

	// epoll_ctl state, kept here so that Arm does not allocate.
	ctlMu sync.Mutex // held across one ctl call; taken after p.mu
	ctlOp int
	ev    unix.EpollEvent
	errno error
	ctlFn func(fd uintptr) // r.control, made once
}

// New creates a poller and starts its wait loop; [Poller.Close] stops it.
func New() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("netpoll: epoll_create1: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("netpoll: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setID(&ev, wakeID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(wake)
		unix.Close(epfd)
		return nil, fmt.Errorf("netpoll: add eventfd to epoll: %w", err)
	}
	// The epoll fd is itself pollable (it is readable while it holds
	// events), so the wait loop can park in Go's netpoller like any network
	// read instead of blocking a thread in epoll_wait: a wake-up is then
	// as cheap as a socket read's, not a return from a blocking syscall
	// that must find a P again.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(wake)
		unix.Close(epfd)
		return nil, fmt.Errorf("netpoll: epoll fd non-blocking: %w", err)
	}
	p := &Poller{
		epfd: epfd,
		file: os.NewFile(uintptr(epfd), "epoll"),
		wake: wake,
		regs: make(map[uint64]*Registration),
		done: make(chan struct{}),
	}
	go p.loop()
	return p, nil
}

// setID stores id in the event's 64-bit user data. Every Linux layout of
// unix.EpollEvent keeps that union in the Fd and Pad fields; the kernel hands
// the 8 bytes back unchanged, so getID reads what setID wrote.
func setID(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func getID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// loop is the wait loop. It owns events and runs until the eventfd fires.
// It waits in Go's netpoller for the epoll fd to become readable and then
// takes the ready events without blocking; where the runtime cannot poll
// the epoll fd it blocks in epoll_wait instead.
func (p *Poller) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, eventBatch)
	rc, err := p.file.SyscallConn()
	parked := err == nil
	var n int
	var werr error
	take := func(fd uintptr) bool {
		n, werr = unix.EpollWait(int(fd), events, 0)
		return n > 0 || (werr != nil && !errors.Is(werr, unix.EINTR))
	}
	for {
		if parked {
			if err := rc.Read(take); err != nil {
				// Not pollable by the runtime: fall back to blocking.
				parked = false
				continue
			}
		} else {
			n, werr = unix.EpollWait(p.epfd, events, -1)
		}
		if werr != nil {
			if errors.Is(werr, unix.EINTR) {
				continue
			}
			p.loopErr = fmt.Errorf("netpoll: epoll_wait: %w", werr)
			return
		}
		p.mu.RLock()
		for i := range events[:n] {
			id := getID(&events[i])
			if id == wakeID {
				p.mu.RUnlock()
				return
			}
			if r := p.regs[id]; r != nil {
				go r.fire()
			}
		}
		p.mu.RUnlock()
	}
}

// fire calls onReady unless the registration was removed or the poller
// closed since the event was taken.
func (r *Registration) fire() {
	r.armSeq.Load()
	if r.dead.Load() || r.p.closed.Load() {
		return
	}
	r.onReady()
}

// Close stops the wait loop and returns after it exited; onReady is not
// called for events after Close returns (an onReady already running is the
// caller's to wait for). Registrations need no Deregister afterwards.
// Close is idempotent and returns the same result every time.
func (p *Poller) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed.Store(true) // from here no Register/Arm/Deregister touches epfd
		p.mu.Unlock()

		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		if _, err := unix.Write(p.wake, one[:]); err != nil && !errors.Is(err, unix.EAGAIN) {
			// EAGAIN means the counter is already nonzero: the loop will wake.
			p.closeErr = fmt.Errorf("netpoll: wake wait loop: %w", err)
			return // the loop may still be running: keep the fds open
		}
		<-p.done
		p.closeErr = errors.Join(p.loopErr, unix.Close(p.wake), p.file.Close())

		p.mu.Lock()
		clear(p.regs)
		p.mu.Unlock()
	})
	return p.closeErr
}

// usable reports why epfd may not be used, or nil. Call it with p.mu held.
func (p *Poller) usable() error {
	if p.closed.Load() {
		return errPollerClosed
	}
	select {
	case <-p.done:
		return fmt.Errorf("netpoll: wait loop stopped, close this poller and create a new one: %w", p.loopErr)
	default:
		return nil
	}
}

// Register adds c to the poller, armed: onReady runs (on a new goroutine)
// once c is readable or its peer closed or reset it. c may be in blocking or
// non-blocking mode. Register a Conn once per Poller.
func (p *Poller) Register(c *Conn, onReady func()) (*Registration, error) {
	if c == nil || onReady == nil {
		return nil, errors.New("netpoll: Register needs a non-nil *Conn and onReady")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.usable(); err != nil {
		return nil, err
	}
	r := &Registration{p: p, c: c, id: p.nextID.Add(1), onReady: onReady}
	r.ctlFn = r.control
	p.regs[r.id] = r // before EPOLL_CTL_ADD: the first event may come at once
	if err := r.ctl(unix.EPOLL_CTL_ADD); err != nil {
		delete(p.regs, r.id)
		return nil, fmt.Errorf("netpoll: register: %w", err)
	}
	return r, nil
}

// ctl runs epoll_ctl for r's fd inside RawConn.Control, which holds a
// reference to the fd: it cannot be closed, and its number reused by another
// connection, meanwhile. A closed conn yields an error wrapping
// net.ErrClosed. Call it with r.p.mu held.
func (r *Registration) ctl(op int) error {
	r.ctlMu.Lock()
	defer r.ctlMu.Unlock()
	r.ctlOp = op
	r.ev = unix.EpollEvent{Events: armEvents}
	setID(&r.ev, r.id)
	err := r.c.raw.Control(r.ctlFn)
	errno := r.errno
	r.errno = nil
	if err != nil {
		return err
	}
	if errno != nil {
		return fmt.Errorf("epoll_ctl: %w", errno)
	}
	return nil
}

// control is r.ctlFn; it runs under r.ctlMu.
func (r *Registration) control(fd uintptr) {
	r.errno = unix.EpollCtl(r.p.epfd, r.ctlOp, int(fd), &r.ev)
}

// Arm re-enables the registration after onReady (EPOLL_CTL_MOD): onReady
// runs again once the connection is readable, at once if unread data is
// pending (level-triggered). Call it once per onReady call, typically at the
// end of onReady after reading until [ErrWouldBlock]. When the connection is
// closed it does nothing and returns an error wrapping net.ErrClosed.
func (r *Registration) Arm() error {
	r.armSeq.Add(1) // release: whatever the caller did before Arm happens before the next onReady
	r.p.mu.RLock()
	defer r.p.mu.RUnlock()
	if err := r.p.usable(); err != nil {
		return err
	}
	if r.dead.Load() {
		return errDeregistered
	}
	if err := r.ctl(unix.EPOLL_CTL_MOD); err != nil {
		return fmt.Errorf("netpoll: arm: %w", err)
	}
	return nil
}

// Deregister removes the registration (EPOLL_CTL_DEL; a closed connection is
// ignored, the kernel dropped it already). After it returns onReady is not
// called again unless it was already running. Deregister is idempotent and
// safe concurrently with events and with onReady, which may call it.
func (r *Registration) Deregister() {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	if r.dead.Load() {
		return
	}
	r.dead.Store(true)
	delete(r.p.regs, r.id)
	if r.p.usable() == nil {
		_ = r.ctl(unix.EPOLL_CTL_DEL) // fails only when the conn is closed, and then the kernel dropped the fd
	}
}
