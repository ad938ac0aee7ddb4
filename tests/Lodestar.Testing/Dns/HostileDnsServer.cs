using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Lodestar.Testing.Dns;

/// <summary>What a <see cref="HostileDnsServer"/> sends back for a query.</summary>
public enum HostileDnsFault
{
    /// <summary>A good answer: the A or AAAA records of <see cref="HostileDnsServer.Addresses"/> with <see cref="HostileDnsServer.Ttl"/>.</summary>
    None,

    /// <summary>Nothing at all (UDP); over TCP, the connection is accepted and held open without a byte.</summary>
    Silence,

    /// <summary>The query's ID followed by junk bytes.</summary>
    Garbage,

    /// <summary>The query's ID and four more bytes: a header cut short.</summary>
    TruncatedHeader,

    /// <summary>Good answers that carry another ID (forged or stray replies), and nothing else.</summary>
    WrongId,

    /// <summary>Three replies with another ID, then the good answer.</summary>
    WrongIdThenGood,

    /// <summary>The query's ID, answering A/AAAA of <c>evil.lodestar.test</c> instead of the name asked.</summary>
    WrongQuestion,

    /// <summary>An answer record whose owner name is a compression pointer to itself.</summary>
    PointerLoop,

    /// <summary>An answer record whose owner name starts with the reserved label type 0x40.</summary>
    BadLabel,

    /// <summary>An A/AAAA record whose data length runs 200 bytes past the end of the message.</summary>
    RecordOverrun,

    /// <summary>UDP only: the TC bit and no records, so the client asks again over TCP (where <see cref="HostileDnsServer.TcpFault"/> applies).</summary>
    Truncated,

    /// <summary>UDP only: the TC bit on a good answer cut in the middle of its first record, as old servers truncate.</summary>
    TruncatedMidRecord,

    /// <summary>UDP: a good answer padded to 5,000 bytes, more than any EDNS size a client may advertise.</summary>
    Oversized,

    /// <summary>TCP: a length prefix of 65,535 and a good answer padded to that size, then junk without end (the connection stays open).</summary>
    Endless,

    /// <summary>TCP: the framed good answer one byte every <see cref="HostileDnsServer.DripInterval"/>.</summary>
    Drip,

    /// <summary>TCP: the length prefix and half the good answer, then the connection is closed.</summary>
    CloseMidMessage,

    /// <summary>SERVFAIL with the question echoed.</summary>
    ServerFailure,

    /// <summary>REFUSED with the question echoed.</summary>
    Refused,

    /// <summary>NXDOMAIN, with an SOA record when <see cref="HostileDnsServer.NegativeTtl"/> is set.</summary>
    NameError,
}

/// <summary>
/// A fault-injecting DNS server on 127.0.0.1, UDP and TCP on one port. It answers A and AAAA questions from
/// <see cref="Addresses"/>, unless <see cref="UdpFault"/> or <see cref="TcpFault"/> (switchable at any time) says to
/// misbehave. It builds its packets itself, byte by byte, sharing no code with the resolver under test.
/// </summary>
public sealed class HostileDnsServer : IAsyncDisposable
{
    private const int MaxEndlessBytes = 8 * 1024 * 1024;
    private static readonly byte[] s_junk = [.. Enumerable.Range(0, 16 * 1024).Select(static i => (byte)(i * 37 + 11))];

    private readonly Socket _udp;
    private readonly Socket _tcp;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _connections = [];
    private readonly Task _udpLoop;
    private readonly Task _tcpLoop;
    private volatile HostileDnsFault _udpFault;
    private volatile HostileDnsFault _tcpFault;
    private volatile IReadOnlyList<IPAddress> _addresses = [IPAddress.Parse("127.0.0.2")];
    private int _udpQueries;
    private int _tcpQueries;
    private long _tcpBytesWritten;

    private HostileDnsServer(Socket udp, Socket tcp)
    {
        _udp = udp;
        _tcp = tcp;
        _udpLoop = Task.Run(() => ServeUdpAsync(_stopping.Token));
        _tcpLoop = Task.Run(() => ServeTcpAsync(_stopping.Token));
    }

    /// <summary>Gets the server's address (UDP and TCP).</summary>
    public IPEndPoint EndPoint => (IPEndPoint)_udp.LocalEndPoint!;

    /// <summary>Gets the server as <c>127.0.0.1:port</c>.</summary>
    public string Server => EndPoint.ToString();

    /// <summary>Gets or sets what UDP queries get. Default <see cref="HostileDnsFault.None"/>.</summary>
    public HostileDnsFault UdpFault { get => _udpFault; set => _udpFault = value; }

    /// <summary>Gets or sets what TCP queries get. Default <see cref="HostileDnsFault.None"/>.</summary>
    public HostileDnsFault TcpFault { get => _tcpFault; set => _tcpFault = value; }

    /// <summary>
    /// Gets or sets the record type (1 = A, 28 = AAAA) the faults apply to; queries of other types get good answers.
    /// <see langword="null"/> (default) applies them to every query.
    /// </summary>
    public int? FaultOnlyForType { get; set; }

    /// <summary>Gets or sets the addresses of good answers: IPv4 ones answer A, IPv6 ones AAAA. Default 127.0.0.2.</summary>
    public IReadOnlyList<IPAddress> Addresses { get => _addresses; set => _addresses = value ?? throw new ArgumentNullException(nameof(value)); }

    /// <summary>Gets or sets the TTL of good records, in seconds. Default 30.</summary>
    public uint Ttl { get; set; } = 30;

    /// <summary>
    /// Gets or sets the TTL and MINIMUM of the SOA record sent with negative answers (no records of the type, NXDOMAIN),
    /// or <see langword="null"/> (default) to send negative answers without an SOA.
    /// </summary>
    public uint? NegativeTtl { get; set; }

    /// <summary>Gets or sets the pause between two bytes of <see cref="HostileDnsFault.Drip"/>. Default 100 ms.</summary>
    public TimeSpan DripInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Gets how many UDP queries arrived.</summary>
    public int UdpQueries => Volatile.Read(ref _udpQueries);

    /// <summary>Gets how many TCP queries arrived.</summary>
    public int TcpQueries => Volatile.Read(ref _tcpQueries);

    /// <summary>Gets how many bytes the server wrote to TCP connections, length prefixes included.</summary>
    public long TcpBytesWritten => Interlocked.Read(ref _tcpBytesWritten);

    /// <summary>Starts a server on a loopback port free for both UDP and TCP.</summary>
    /// <returns>The running server.</returns>
    public static HostileDnsServer Start()
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            tcp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                udp.Bind(new IPEndPoint(IPAddress.Loopback, ((IPEndPoint)tcp.LocalEndPoint!).Port));
                tcp.Listen(16);
                return new HostileDnsServer(udp, tcp);
            }
            catch (SocketException)
            {
                udp.Dispose();
                tcp.Dispose();
            }
        }

        throw new InvalidOperationException("No loopback port is free for both UDP and TCP.");
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _udp.Dispose();
        _tcp.Dispose();
        Task[] connections;
        lock (_connections)
        {
            connections = [.. _connections];
        }

        try
        {
            await Task.WhenAll([_udpLoop, _tcpLoop, .. connections]).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException or IOException)
        {
            // The loops end with the sockets they were using.
        }

        _stopping.Dispose();
    }

    private async Task ServeUdpAsync(CancellationToken cancellationToken)
    {
        var buffer = new byte[4096];
        while (!cancellationToken.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await _udp.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), cancellationToken);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    return;
                }

                continue;
            }

            Interlocked.Increment(ref _udpQueries);
            if (!Query.TryParse(buffer.AsSpan(0, received.ReceivedBytes), out var query))
            {
                continue;
            }

            foreach (var datagram in UdpReplies(query, FaultFor(query, UdpFault)))
            {
                try
                {
                    await _udp.SendToAsync(datagram, SocketFlags.None, received.RemoteEndPoint, cancellationToken);
                }
                catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
                {
                    break;
                }
            }
        }
    }

    private async Task ServeTcpAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await _tcp.AcceptAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    return;
                }

                continue;
            }

            var task = Task.Run(() => ServeConnectionAsync(connection, cancellationToken));
            lock (_connections)
            {
                _connections.RemoveAll(static t => t.IsCompleted);
                _connections.Add(task);
            }
        }
    }

    private async Task ServeConnectionAsync(Socket connection, CancellationToken cancellationToken)
    {
        using var _ = connection;
        try
        {
            var prefix = new byte[2];
            if (!await ReadExactlyAsync(connection, prefix, cancellationToken))
            {
                return;
            }

            var length = BinaryPrimitives.ReadUInt16BigEndian(prefix);
            if (length is 0 or > 512)
            {
                return;
            }

            var bytes = new byte[length];
            if (!await ReadExactlyAsync(connection, bytes, cancellationToken) || !Query.TryParse(bytes, out var query))
            {
                return;
            }

            Interlocked.Increment(ref _tcpQueries);
            var fault = FaultFor(query, TcpFault);
            var good = Answer(query, query.Id, query.Name);
            switch (fault)
            {
                case HostileDnsFault.Silence:
                    await Task.Delay(Timeout.Infinite, cancellationToken);
                    return;
                case HostileDnsFault.Drip:
                    foreach (var b in Framed(good))
                    {
                        await WriteAsync(connection, [b], cancellationToken);
                        await Task.Delay(DripInterval, cancellationToken);
                    }

                    return;
                case HostileDnsFault.CloseMidMessage:
                    var framed = Framed(good);
                    await WriteAsync(connection, framed[..(2 + (good.Length / 2))], cancellationToken);
                    return;
                case HostileDnsFault.Endless:
                    var padded = new byte[2 + ushort.MaxValue];
                    BinaryPrimitives.WriteUInt16BigEndian(padded, ushort.MaxValue);
                    good.CopyTo(padded, 2);
                    await WriteAsync(connection, padded, cancellationToken);
                    // Bounded in bytes; then the connection stays open, so only a client that stops at the length
                    // prefix finishes before its timeout.
                    for (var sent = 0; sent < MaxEndlessBytes; sent += s_junk.Length)
                    {
                        await WriteAsync(connection, s_junk, cancellationToken);
                    }

                    await Task.Delay(Timeout.Infinite, cancellationToken);
                    return;
                default:
                    foreach (var reply in Replies(query, fault))
                    {
                        await WriteAsync(connection, Framed(reply), cancellationToken);
                    }

                    return;
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // The client went away or the server is stopping.
        }
    }

    private async Task WriteAsync(Socket connection, byte[] bytes, CancellationToken cancellationToken)
    {
        var sent = 0;
        while (sent < bytes.Length)
        {
            var n = await connection.SendAsync(bytes.AsMemory(sent), SocketFlags.None, cancellationToken);
            sent += n;
            Interlocked.Add(ref _tcpBytesWritten, n);
        }
    }

    private static async Task<bool> ReadExactlyAsync(Socket connection, byte[] buffer, CancellationToken cancellationToken)
    {
        var received = 0;
        while (received < buffer.Length)
        {
            var n = await connection.ReceiveAsync(buffer.AsMemory(received), SocketFlags.None, cancellationToken);
            if (n == 0)
            {
                return false;
            }

            received += n;
        }

        return true;
    }

    private HostileDnsFault FaultFor(Query query, HostileDnsFault fault)
        => FaultOnlyForType is { } only && only != query.Type ? HostileDnsFault.None : fault;

    private IEnumerable<byte[]> UdpReplies(Query query, HostileDnsFault fault)
    {
        switch (fault)
        {
            case HostileDnsFault.Silence:
                return [];
            case HostileDnsFault.Truncated:
                var truncated = Header(query.Id, flags: 0x8380, questions: 1, answers: 0, authorities: 0);
                return [[.. truncated, .. query.Question]];
            case HostileDnsFault.TruncatedMidRecord:
                var cut = Answer(query, query.Id, query.Name);
                cut[2] |= 0x02;
                return [cut[..(12 + query.Question.Length + 7)]];
            case HostileDnsFault.Oversized:
                var padded = new byte[5000];
                Answer(query, query.Id, query.Name).CopyTo(padded, 0);
                return [padded];
            default:
                return Replies(query, fault);
        }
    }

    private IEnumerable<byte[]> Replies(Query query, HostileDnsFault fault)
    {
        var otherId = (ushort)(query.Id ^ 0x5A5A);
        switch (fault)
        {
            case HostileDnsFault.Garbage:
                var garbage = new byte[100];
                for (var i = 2; i < garbage.Length; i++)
                {
                    garbage[i] = (byte)(0x3F + (i % 5));
                }

                BinaryPrimitives.WriteUInt16BigEndian(garbage, query.Id);
                return [garbage];
            case HostileDnsFault.TruncatedHeader:
                return [[(byte)(query.Id >> 8), (byte)query.Id, 0x81, 0x80, 0, 1]];
            case HostileDnsFault.WrongId:
                return [Answer(query, otherId, query.Name), Answer(query, (ushort)(otherId + 1), query.Name), Answer(query, (ushort)(otherId + 2), query.Name)];
            case HostileDnsFault.WrongIdThenGood:
                return [Answer(query, otherId, query.Name), Answer(query, (ushort)(otherId + 1), query.Name), Answer(query, (ushort)(otherId + 2), query.Name),
                    Answer(query, query.Id, query.Name)];
            case HostileDnsFault.WrongQuestion:
                return [Answer(query, query.Id, "evil.lodestar.test")];
            case HostileDnsFault.PointerLoop:
            {
                var message = Header(query.Id, flags: 0x8180, questions: 1, answers: 1, authorities: 0);
                var at = message.Length + query.Question.Length;
                return [[.. message, .. query.Question, (byte)(0xC0 | (at >> 8)), (byte)at, .. Fixed(query.Type, Ttl, 4), 127, 0, 0, 9]];
            }

            case HostileDnsFault.BadLabel:
            {
                var message = Header(query.Id, flags: 0x8180, questions: 1, answers: 1, authorities: 0);
                return [[.. message, .. query.Question, 0x41, (byte)'x', 0, .. Fixed(query.Type, Ttl, 4), 127, 0, 0, 9]];
            }

            case HostileDnsFault.RecordOverrun:
            {
                var message = Header(query.Id, flags: 0x8180, questions: 1, answers: 1, authorities: 0);
                return [[.. message, .. query.Question, 0xC0, 12, .. Fixed(query.Type, Ttl, 204), 127, 0, 0, 9]];
            }

            case HostileDnsFault.ServerFailure:
                return [[.. Header(query.Id, flags: 0x8182, questions: 1, answers: 0, authorities: 0), .. query.Question]];
            case HostileDnsFault.Refused:
                return [[.. Header(query.Id, flags: 0x8185, questions: 1, answers: 0, authorities: 0), .. query.Question]];
            case HostileDnsFault.NameError:
                return [Negative(query, rcode: 3)];
            default:
                return [Answer(query, query.Id, query.Name)];
        }
    }

    /// <summary>A good answer (or a negative one when no address has the asked family), for <paramref name="name"/>.</summary>
    private byte[] Answer(Query query, ushort id, string name)
    {
        var family = query.Type switch
        {
            1 => AddressFamily.InterNetwork,
            28 => AddressFamily.InterNetworkV6,
            _ => AddressFamily.Unknown,
        };
        var addresses = Addresses.Where(a => a.AddressFamily == family).ToList();
        if (addresses.Count == 0)
        {
            return Negative(query, rcode: 0, id);
        }

        var question = name == query.Name ? query.Question : Query.EncodeQuestion(name, query.Type);
        var bytes = new List<byte>(Header(id, flags: 0x8580, questions: 1, answers: addresses.Count, authorities: 0));
        bytes.AddRange(question);
        foreach (var address in addresses)
        {
            var data = address.GetAddressBytes();
            bytes.AddRange([0xC0, 12]);
            bytes.AddRange(Fixed(query.Type, Ttl, data.Length));
            bytes.AddRange(data);
        }

        return [.. bytes];
    }

    private byte[] Negative(Query query, int rcode, ushort? id = null)
    {
        var bytes = new List<byte>(Header(id ?? query.Id, flags: 0x8580 | rcode, questions: 1, answers: 0, authorities: NegativeTtl.HasValue ? 1 : 0));
        bytes.AddRange(query.Question);
        if (NegativeTtl is { } negative)
        {
            // SOA owned by the root: MNAME and RNAME are the root too, then five 32-bit fields, MINIMUM last.
            bytes.Add(0);
            bytes.AddRange(Fixed(6, negative, 2 + 20));
            bytes.AddRange([0, 0]);
            foreach (var value in new[] { 1u, 3600u, 600u, 86400u, negative })
            {
                bytes.AddRange(U32(value));
            }
        }

        return [.. bytes];
    }

    private static byte[] Header(ushort id, int flags, int questions, int answers, int authorities)
    {
        var header = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(header, id);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(2), (ushort)flags);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(4), (ushort)questions);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(6), (ushort)answers);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(8), (ushort)authorities);
        return header;
    }

    /// <summary>TYPE, CLASS IN, TTL and RDLENGTH of a record.</summary>
    private static byte[] Fixed(int type, uint ttl, int dataLength)
    {
        var bytes = new byte[10];
        BinaryPrimitives.WriteUInt16BigEndian(bytes, (ushort)type);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2), 1);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), ttl);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(8), (ushort)dataLength);
        return bytes;
    }

    private static byte[] U32(uint value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return bytes;
    }

    private static byte[] Framed(byte[] message)
    {
        var framed = new byte[message.Length + 2];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)message.Length);
        message.CopyTo(framed, 2);
        return framed;
    }

    /// <summary>The parts of a query the server needs: ID, the question as sent, its name and type.</summary>
    private sealed record Query(ushort Id, byte[] Question, string Name, int Type)
    {
        public static bool TryParse(ReadOnlySpan<byte> bytes, out Query query)
        {
            query = null!;
            if (bytes.Length < 12 || BinaryPrimitives.ReadUInt16BigEndian(bytes[4..]) != 1)
            {
                return false;
            }

            var labels = new List<string>();
            var offset = 12;
            while (offset < bytes.Length && bytes[offset] != 0)
            {
                int length = bytes[offset];
                if (length > 63 || offset + 1 + length >= bytes.Length)
                {
                    return false;
                }

                labels.Add(System.Text.Encoding.ASCII.GetString(bytes.Slice(offset + 1, length)));
                offset += 1 + length;
            }

            if (offset + 5 > bytes.Length)
            {
                return false;
            }

            var end = offset + 5;
            query = new Query(BinaryPrimitives.ReadUInt16BigEndian(bytes), bytes[12..end].ToArray(), string.Join('.', labels),
                BinaryPrimitives.ReadUInt16BigEndian(bytes[(offset + 1)..]));
            return true;
        }

        public static byte[] EncodeQuestion(string name, int type)
        {
            var bytes = new List<byte>();
            foreach (var label in name.Split('.', StringSplitOptions.RemoveEmptyEntries))
            {
                bytes.Add((byte)label.Length);
                bytes.AddRange(System.Text.Encoding.ASCII.GetBytes(label));
            }

            bytes.Add(0);
            bytes.AddRange([(byte)(type >> 8), (byte)type, 0, 1]);
            return [.. bytes];
        }

        public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Type} {Name} (ID {Id})");
    }
}
