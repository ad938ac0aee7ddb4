using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace Lodestar.Dns.Resolver.Internal;

/// <summary>
/// A small stub resolver (RFC 1035 §7, RFC 1123 §6.1.3) that keeps what System.Net.Dns hides: TTLs, SRV records,
/// negative answers with their SOA. Thread-safe; every query uses its own socket.
/// </summary>
/// <remarks>
/// Spoofing defences of a stub resolver (RFC 5452 §9.2): a random query ID from a cryptographic generator, a fresh
/// socket per query so the kernel picks a random ephemeral source port, a connected UDP socket so datagrams from other
/// addresses are dropped, and answers accepted only when ID and question match. Servers are tried in order, each with
/// its own timeout, for <see cref="DnsResolverSettings.Attempts"/> rounds, as glibc does.
/// </remarks>
internal sealed partial class DnsStubResolver
{
    private const int MaxCnameHops = 8;

    /// <summary>The largest UDP answer to a query without EDNS (RFC 1035 §4.2.1).</summary>
    private const int MaxPlainUdpSize = 512;

    private const int HeaderLength = 12;
    private const ushort TruncatedFlag = 0x0200;
    private const string Udp = "UDP";
    private const string Tcp = "TCP (asked after a truncated UDP answer)";
    private readonly DnsResolverSettings _settings;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;

    public DnsStubResolver(DnsResolverSettings settings, TimeProvider timeProvider, ILogger logger)
    {
        if (settings.Servers.Count == 0)
        {
            throw new ArgumentException("At least one name server is required.", nameof(settings));
        }

        _settings = settings;
        _timeProvider = timeProvider;
        _logger = logger;
    }

    public DnsResolverSettings Settings => _settings;

    /// <summary>
    /// Looks <paramref name="name"/> up through the search list (unless it ends with a dot) and follows CNAMEs.
    /// </summary>
    /// <exception cref="DnsResolutionException">No candidate name had an answer and one of them failed.</exception>
    /// <exception cref="ArgumentException">The name is not a valid host name.</exception>
    public async Task<DnsLookupResult> LookupAsync(string name, DnsRecordType type, CancellationToken cancellationToken)
    {
        DnsLookupResult? noData = null;
        DnsLookupResult? last = null;
        DnsResolutionException? failure = null;
        foreach (var candidate in GetCandidates(name))
        {
            DnsLookupResult result;
            try
            {
                result = await LookupAbsoluteAsync(candidate, type, cancellationToken).ConfigureAwait(false);
            }
            catch (DnsResolutionException ex)
            {
                // Like glibc's res_search, a failing candidate (SERVFAIL, REFUSED, timeout) does not end the search.
                failure = ex;
                continue;
            }

            if (result.Status == DnsLookupStatus.Success)
            {
                return result;
            }

            // Go on with the next candidate, and prefer "exists but has no such record" over "does not exist".
            noData ??= result.Status == DnsLookupStatus.NoData ? result : null;
            last = result;
        }

        // A failure may hide the answer, so it wins over "does not exist"; "exists without such records" is certain.
        return noData ?? (failure is not null ? throw failure : last!);
    }

    /// <summary>The names to try for <paramref name="name"/>, in order (resolv.conf(5) <c>ndots</c>, <c>search</c>).</summary>
    public IReadOnlyList<string> GetCandidates(string name)
    {
        if (!DnsQueryWriter.IsValidName(name))
        {
            throw new ArgumentException($"'{name}' is not a valid DNS name.", nameof(name));
        }

        if (name.EndsWith('.'))
        {
            return [name[..^1]];
        }

        var candidates = new List<string>(_settings.SearchDomains.Count + 1);
        var dots = name.Count(static c => c == '.');
        var absoluteFirst = dots >= _settings.Ndots;
        if (absoluteFirst)
        {
            candidates.Add(name);
        }

        foreach (var domain in _settings.SearchDomains)
        {
            var candidate = name + "." + domain;
            if (DnsQueryWriter.IsValidName(candidate))
            {
                candidates.Add(candidate);
            }
        }

        if (!absoluteFirst)
        {
            candidates.Add(name);
        }

        return candidates;
    }

    /// <summary>Looks an absolute name up, following CNAME chains within and across answers.</summary>
    public async Task<DnsLookupResult> LookupAbsoluteAsync(string name, DnsRecordType type, CancellationToken cancellationToken)
    {
        var current = name.TrimEnd('.');
        var ttl = uint.MaxValue;
        for (var query = 0; query < MaxCnameHops; query++)
        {
            var message = await QueryAsync(current, type, cancellationToken).ConfigureAwait(false);
            var owner = current;
            for (var hop = 0; hop <= MaxCnameHops; hop++)
            {
                List<DnsRecord>? records = null;
                foreach (var record in message.Answers)
                {
                    if (record.Type == type && record.Class == 1 && NameEquals(record.Name, owner))
                    {
                        (records ??= []).Add(record);
                        ttl = Math.Min(ttl, record.Ttl);
                    }
                }

                if (records is not null)
                {
                    return new DnsLookupResult { Name = owner, Status = DnsLookupStatus.Success, Records = records, Additionals = message.Additionals, Ttl = ttl };
                }

                var cname = type == DnsRecordType.CNAME ? null : message.Answers.FirstOrDefault(r => r.Type == DnsRecordType.CNAME && NameEquals(r.Name, owner));
                if (cname?.Target is not { Length: > 0 } target)
                {
                    break;
                }

                ttl = Math.Min(ttl, cname.Ttl);
                owner = target;
            }

            if (message.ResponseCode == DnsResponseCode.NameError || NameEquals(owner, current))
            {
                // RFC 6604: the response code speaks about the last name of the chain.
                var negativeTtl = GetNegativeTtl(message);
                return new DnsLookupResult
                {
                    Name = owner,
                    Status = message.ResponseCode == DnsResponseCode.NameError ? DnsLookupStatus.NameError : DnsLookupStatus.NoData,
                    Ttl = negativeTtl is null ? null : Math.Min(negativeTtl.Value, ttl),
                };
            }

            // The chain leaves this answer without data: ask for its last name.
            current = owner;
        }

        throw new DnsResolutionException($"The CNAME chain of '{name}' is longer than {MaxCnameHops} queries.");
    }

    /// <summary>
    /// Sends one query for an absolute name and returns the first answer that is NOERROR or NXDOMAIN.
    /// </summary>
    /// <exception cref="DnsResolutionException">Every server failed in every attempt; the message has each server's last failure.</exception>
    public async Task<DnsMessage> QueryAsync(string name, DnsRecordType type, CancellationToken cancellationToken)
    {
        Exception? lastError = null;
        var servers = _settings.Servers;
        var lastErrors = new Exception?[servers.Count];
        for (var attempt = 0; attempt < _settings.Attempts; attempt++)
        {
            for (var i = 0; i < servers.Count; i++)
            {
                var server = servers[i];
                cancellationToken.ThrowIfCancellationRequested();
                try
                {
                    var message = await ExchangeAsync(server, name, type, cancellationToken).ConfigureAwait(false);
                    if (message.ResponseCode is DnsResponseCode.NoError or DnsResponseCode.NameError)
                    {
                        return message;
                    }

                    lastError = new DnsResolutionException($"DNS server {server} answered {type} {name} with {message.ResponseCode}.");
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    lastError = new TimeoutException($"DNS server {server} did not answer {type} {name} within {_settings.Timeout.TotalMilliseconds:0} ms.");
                }
                catch (Exception ex) when (ex is DnsFormatException or DnsResolutionException or TimeoutException)
                {
                    lastError = ex;
                }
                catch (Exception ex) when (ex is SocketException or IOException)
                {
                    lastError = new DnsResolutionException($"DNS server {server} failed {type} {name}: {ex.Message}", ex);
                }

                lastErrors[i] = lastError;
                Log.ServerFailed(_logger, server.ToString(), type.ToString(), name, attempt + 1, lastError.Message);
            }
        }

        var errors = servers.Count == 1 ? "; last error: " + lastError?.Message : "; last errors: " + string.Join(" ", lastErrors.Select(static e => e?.Message));
        throw new DnsResolutionException($"No DNS server answered {type} {name} ({servers.Count} server(s), {_settings.Attempts} attempt(s)){errors}", lastError);
    }

    private async Task<DnsMessage> ExchangeAsync(IPEndPoint server, string name, DnsRecordType type, CancellationToken cancellationToken)
    {
        var payload = _settings.UdpPayloadSize;
        var message = await ExchangeUdpAsync(server, name, type, payload, cancellationToken).ConfigureAwait(false);
        if (payload > 0 && message.ResponseCode == DnsResponseCode.FormatError && message.EdnsPayloadSize == 0)
        {
            // RFC 6891 §7: a server that does not know EDNS answers FORMERR without an OPT record; ask again plainly.
            payload = 0;
            message = await ExchangeUdpAsync(server, name, type, payload, cancellationToken).ConfigureAwait(false);
        }

        if (message.IsTruncated)
        {
            // RFC 1035 §4.2.2 / RFC 7766: a truncated UDP answer is repeated over TCP.
            Log.RetryingOverTcp(_logger, type.ToString(), name, server.ToString());
            message = await ExchangeTcpAsync(server, name, type, payload, cancellationToken).ConfigureAwait(false);
        }

        return message;
    }

    /// <summary>
    /// One UDP exchange. A datagram whose ID is not the query's is ignored (RFC 5452 §9.1: it answers some other query
    /// or is forged) and the wait goes on until the attempt's timeout; any other bad datagram is the server's answer
    /// and fails the exchange with a <see cref="DnsFormatException"/> saying what was wrong.
    /// </summary>
    private async Task<DnsMessage> ExchangeUdpAsync(IPEndPoint server, string name, DnsRecordType type, ushort payload, CancellationToken cancellationToken)
    {
        var id = NewId();
        var query = DnsQueryWriter.Write(id, name, type, payload);
        using var timeout = new CancellationTokenSource(_settings.Timeout, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        using var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        // RFC 1035 §4.2.1 limits plain UDP answers to 512 bytes, RFC 6891 §6.2.3 EDNS answers to the size advertised.
        // The buffer has one byte more: the kernel silently cuts a datagram to the buffer, so one that fills it is too big.
        var limit = Math.Max(MaxPlainUdpSize, (int)payload);
        var buffer = new byte[limit + 1];
        var ignored = 0;
        try
        {
            // Port 0: the kernel assigns a random ephemeral source port per socket.
            socket.Bind(new IPEndPoint(server.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0));
            await socket.ConnectAsync(server, linked.Token).ConfigureAwait(false);
            await socket.SendAsync(query, SocketFlags.None, linked.Token).ConfigureAwait(false);
            while (true)
            {
                // Bounded by the attempt's timeout: stray or forged datagrams cannot keep us here longer.
                var received = await socket.ReceiveAsync(buffer, SocketFlags.None, linked.Token).ConfigureAwait(false);
                if (received >= 2 && BinaryPrimitives.ReadUInt16BigEndian(buffer) != id)
                {
                    ignored++;
                    Log.IgnoredResponse(_logger, server.ToString(), type.ToString(), name, BinaryPrimitives.ReadUInt16BigEndian(buffer), id);
                    continue;
                }

                if (received > limit)
                {
                    throw Malformed(server, type, name, Udp, $"The datagram is larger than the {limit} bytes the query allowed.");
                }

                if (received >= HeaderLength && (BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(2)) & TruncatedFlag) != 0)
                {
                    // RFC 1035 §4.1.1: a truncated answer may be cut anywhere, so only its header counts: ask over TCP.
                    return TruncatedAnswer(buffer);
                }

                return Check(Parse(buffer.AsSpan(0, received), server, type, name, Udp), id, server, type, name, Udp);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"DNS server {server} did not answer {type} {name} within {_settings.Timeout.TotalMilliseconds:0} ms"
                                       + (ignored > 0 ? $"; {ignored} datagram(s) carrying another query ID were ignored." : "."));
        }
        catch (SocketException ex)
        {
            throw new DnsResolutionException($"DNS server {server} failed {type} {name} over UDP: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// One TCP exchange after a truncated UDP answer. The two-byte length prefix (RFC 1035 §4.2.2) bounds the answer to
    /// 65,535 bytes; exactly that many bytes are read, straight from the socket with no buffering past them, and the
    /// attempt's timeout covers the connection, the query and the whole answer, so a server that drips or keeps sending
    /// cannot hold the exchange or its memory.
    /// </summary>
    private async Task<DnsMessage> ExchangeTcpAsync(IPEndPoint server, string name, DnsRecordType type, ushort payload, CancellationToken cancellationToken)
    {
        var id = NewId();
        var query = DnsQueryWriter.Write(id, name, type, payload);
        using var timeout = new CancellationTokenSource(_settings.Timeout, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        using var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var received = 0;
        var length = -1;
        try
        {
            await socket.ConnectAsync(server, linked.Token).ConfigureAwait(false);
            using var stream = new NetworkStream(socket, ownsSocket: false);
            // RFC 1035 §4.2.2: a two-byte length prefix, sent in the same write as the message (RFC 7766 §8).
            var framed = new byte[query.Length + 2];
            BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)query.Length);
            query.CopyTo(framed, 2);
            await stream.WriteAsync(framed, linked.Token).ConfigureAwait(false);

            var prefix = new byte[2];
            while (received < prefix.Length)
            {
                var read = await stream.ReadAsync(prefix.AsMemory(received), linked.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    throw Malformed(server, type, name, Tcp, received == 0
                        ? "It closed the connection without answering."
                        : "It closed the connection in the middle of the two-byte length prefix.");
                }

                received += read;
            }

            length = BinaryPrimitives.ReadUInt16BigEndian(prefix);
            if (length < HeaderLength)
            {
                throw Malformed(server, type, name, Tcp, $"Its length prefix announces {length} bytes, shorter than the 12-byte DNS header.");
            }

            var buffer = new byte[length];
            received = 0;
            while (received < length)
            {
                var read = await stream.ReadAsync(buffer.AsMemory(received), linked.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    throw Malformed(server, type, name, Tcp, $"It closed the connection after {received} of the {length} bytes its length prefix announced.");
                }

                received += read;
            }

            return Check(Parse(buffer, server, type, name, Tcp), id, server, type, name, Tcp);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException(length < 0
                ? $"DNS server {server} did not answer {type} {name} over {Tcp} within {_settings.Timeout.TotalMilliseconds:0} ms."
                : $"DNS server {server} did not finish its answer to {type} {name} over {Tcp} within {_settings.Timeout.TotalMilliseconds:0} ms: {received} of {length} bytes arrived.");
        }
        catch (Exception ex) when (ex is SocketException or IOException)
        {
            throw new DnsResolutionException($"DNS server {server} failed {type} {name} over {Tcp}: {ex.Message}", ex);
        }
    }

    private static DnsMessage TruncatedAnswer(byte[] header) => new()
    {
        Id = BinaryPrimitives.ReadUInt16BigEndian(header),
        Flags = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(2)),
        ResponseCode = (DnsResponseCode)(header[3] & 0xF),
        Questions = [],
        Answers = [],
        Authorities = [],
        Additionals = [],
    };

    private static DnsMessage Parse(ReadOnlySpan<byte> bytes, IPEndPoint server, DnsRecordType type, string name, string transport)
    {
        try
        {
            return DnsMessageReader.Parse(bytes);
        }
        catch (DnsFormatException ex)
        {
            throw Malformed(server, type, name, transport, ex.Message, ex);
        }
    }

    /// <summary>Checks that a parsed reply carrying the query's ID answers the query (RFC 5452 §9.1, RFC 1035 §7.3).</summary>
    private static DnsMessage Check(DnsMessage response, ushort id, IPEndPoint server, DnsRecordType type, string name, string transport)
    {
        string? problem = null;
        if (response.Id != id)
        {
            problem = $"Its ID is {response.Id}; the query's is {id}.";
        }
        else if (!response.IsResponse)
        {
            problem = "It is a query, not a response (the QR bit is clear).";
        }
        else if (response.Opcode != 0)
        {
            problem = $"It has opcode {response.Opcode}; the query's is 0 (QUERY).";
        }
        else if (response.Questions.Count == 0)
        {
            // Servers that reject a query may drop the question section; accept only a failure code that way.
            if (response.ResponseCode is DnsResponseCode.NoError or DnsResponseCode.NameError)
            {
                problem = $"It has no question section although its response code is {response.ResponseCode}.";
            }
        }
        else if (response.Questions.Count > 1)
        {
            problem = $"It has {response.Questions.Count} questions; the query had one.";
        }
        else if (response.Questions[0] is var question && (question.Type != type || question.Class != 1 || !NameEquals(question.Name, name)))
        {
            var @class = question.Class == 1 ? string.Empty : $" (class {question.Class})";
            problem = $"It answers another question: {question.Type} {question.Name}{@class}.";
        }

        return problem is null ? response : throw Malformed(server, type, name, transport, problem);
    }

    private static DnsFormatException Malformed(IPEndPoint server, DnsRecordType type, string name, string transport, string problem, Exception? inner = null)
        => new($"DNS server {server} sent a malformed answer to {type} {name} over {transport}: {problem}", inner);

    private static uint? GetNegativeTtl(DnsMessage message)
    {
        foreach (var record in message.Authorities)
        {
            if (record.Soa is { } soa)
            {
                // RFC 2308 §5: the negative TTL is the minimum of the SOA record's own TTL and its MINIMUM field.
                return Math.Min(record.Ttl, soa.Minimum > int.MaxValue ? 0 : soa.Minimum);
            }
        }

        return null;
    }

    internal static bool NameEquals(string a, string b)
        => string.Equals(a.TrimEnd('.'), b.TrimEnd('.'), StringComparison.OrdinalIgnoreCase);

    private static ushort NewId() => (ushort)RandomNumberGenerator.GetInt32(0, 65536);

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Debug, "DNS server {Server} failed {Type} {Name} in attempt {Attempt}: {Error}", EventName = "DnsServerFailed")]
        public static partial void ServerFailed(ILogger logger, string server, string type, string name, int attempt, string error);

        [LoggerMessage(2, LogLevel.Debug, "The UDP answer from {Server} to {Type} {Name} is truncated; asking again over TCP.", EventName = "DnsRetryingOverTcp")]
        public static partial void RetryingOverTcp(ILogger logger, string type, string name, string server);

        [LoggerMessage(3, LogLevel.Debug, "Ignored a datagram from {Server} with ID {Id} while waiting for {Type} {Name} (ID {QueryId}).", EventName = "DnsIgnoredResponse")]
        public static partial void IgnoredResponse(ILogger logger, string server, string type, string name, ushort id, ushort queryId);
    }
}
