using System.ComponentModel;
using Lodestar.Discovery;

namespace Lodestar.Etcd;

/// <summary>Options of the etcd source and registrar, bound from the <c>Lodestar:Etcd</c> configuration section.</summary>
public sealed class EtcdOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Lodestar:Etcd";

    /// <summary>
    /// Gets or sets the URL of etcd's client endpoint (its JSON gateway serves <c>/v3/</c> on the same port), or the
    /// URLs of several members of one cluster separated by commas, as etcdctl's <c>--endpoints</c>:
    /// <c>http://10.0.0.1:2379,http://10.0.0.2:2379</c> (spaces around the commas are allowed).
    /// Default <c>http://127.0.0.1:2379</c>; each entry must be an absolute http or https URL with no path.
    /// </summary>
    /// <remarks>
    /// Requests go to one member at a time, starting with the first. When a member cannot be reached (connection
    /// refused or reset, TLS failure), the request is sent at once to the next member, each member at most once per
    /// request, and later requests stay with the member that answered. A member that lets a request time out is left
    /// for the next request, but that request fails, since etcd may have applied it.
    /// </remarks>
    public string Address { get; set; } = "http://127.0.0.1:2379";

    /// <summary>
    /// Gets or sets the key prefix put before the service name: the instances of service <c>orders</c> are the keys
    /// under <c>{Prefix}orders/</c>. Default empty, which is the layout of etcd's Go <c>naming/endpoints</c> package
    /// when its target is the service name, so Go services are found with no configuration. Example: <c>/services/</c>.
    /// </summary>
    public string Prefix { get; set; } = string.Empty;

    /// <summary>Gets or sets the user name for etcd authentication, or <see langword="null"/> (default) when auth is off.</summary>
    public string? Username { get; set; }

    /// <summary>Gets or sets the password for etcd authentication. It never appears in logs or error messages.</summary>
    public string? Password { get; set; }

    /// <summary>Gets or sets a PEM file with the CA certificate(s) that sign etcd's server certificate, or <see langword="null"/> to use the system trust store.</summary>
    public string? CaCertificatePath { get; set; }

    /// <summary>Gets or sets a PEM file with the client certificate for mutual TLS, or <see langword="null"/> for none.</summary>
    public string? ClientCertificatePath { get; set; }

    /// <summary>Gets or sets the PEM file with the client certificate's private key, or <see langword="null"/> when the certificate file holds it.</summary>
    public string? ClientKeyPath { get; set; }

    /// <summary>
    /// Gets or sets the timeout of each non-watch request (range, put, lease calls). Default 5 seconds; range 100 ms to
    /// 2 minutes.
    /// </summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Gets or sets the cap of the backoff between retries. Obsolete alias of <see cref="BackoffOptions.MaxDelay"/> in
    /// <see cref="Backoff"/>, kept for one release: it reads and writes <c>Backoff.MaxDelay</c> and still binds from
    /// <c>Lodestar:Etcd:MaxRetryDelay</c> (when both keys are set, <c>Lodestar:Etcd:Backoff:MaxDelay</c> wins: it binds later).
    /// </summary>
    [Obsolete("Use Backoff.MaxDelay. MaxRetryDelay is an alias of it and will be removed in the next release.")]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public TimeSpan MaxRetryDelay
    {
        get => Backoff?.MaxDelay ?? BackoffOptions.DefaultMaxDelay;
        set => (Backoff ??= new BackoffOptions()).MaxDelay = value;
    }

    /// <summary>
    /// Gets or sets how the source waits between failures: capped exponential backoff with full jitter that starts
    /// over once the loop has gone <see cref="BackoffOptions.ResetAfter"/> without a failure. Bound from
    /// <c>Lodestar:Etcd:Backoff</c>. Defaults are client-go's: 800 ms, doubling up to 30 s, reset after 2 minutes.
    /// </summary>
    /// <remarks>
    /// The registrar does not use it: a failed lease keep-alive is retried within the lease's TTL, from 100 ms up to a
    /// third of the TTL, whatever this says.
    /// </remarks>
    public BackoffOptions Backoff { get; set; } = new();

    /// <summary>
    /// Gets or sets how long a watch may stay silent before the source takes it for stalled (a dead connection that
    /// was never closed, a proxy that stopped forwarding) and watches again from the revision after the last event it
    /// saw. Default 25 minutes; range 100 ms to 1 day, or <see cref="Timeout.InfiniteTimeSpan"/> to trust the stream.
    /// </summary>
    /// <remarks>
    /// Each watch asks etcd for progress notifications (<c>progress_notify</c>). etcd sends one every
    /// <c>--experimental-watch-progress-notify-interval</c> (<c>--watch-progress-notify-interval</c> from etcd 3.6;
    /// default 10 minutes, plus up to 10 % jitter), but skips it when the watch had events since the previous tick, so a
    /// healthy watch is never silent for more than about 2.2 intervals. Keep this timeout at least 2.5 times the
    /// server's interval: the default fits etcd's default; with the server at 30 s, 75 s detects a stalled watch within
    /// about a minute. A shorter timeout than the server allows makes every quiet watch reconnect.
    /// </remarks>
    public TimeSpan WatchProgressTimeout { get; set; } = TimeSpan.FromMinutes(25);

    /// <summary>
    /// Gets or sets the largest answer to a range (the whole set of a service) the source reads, in bytes; a larger one
    /// is not read but reported, and the last good set stays in force. Default 64 MiB; range 1 KiB to 2 GiB.
    /// </summary>
    /// <remarks>
    /// A real service never comes near it: one instance in the Go naming format takes about 300 bytes of gateway JSON,
    /// so 64 MiB holds about 200,000 instances. The cap exists so that a broken or hostile server, or a wrong
    /// <see cref="Prefix"/> ranging a huge keyspace, cannot make the process buffer without bound. Every other answer
    /// (put, lease calls, authenticate) is read with the same cap, and error bodies with 64 KiB.
    /// </remarks>
    public long MaxRangeResponseBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>
    /// Gets or sets the largest single watch message the source reads, in bytes. A larger one is reported, and the
    /// source ranges the prefix again instead of reading it (so a legitimately large catch-up cannot wedge the watch).
    /// Default 64 MiB; range 1 KiB to 2 GiB.
    /// </summary>
    /// <remarks>
    /// A watch that keeps up gets one message per revision, and etcd caps a revision at <c>--max-request-bytes</c>
    /// (1.5 MiB by default, about 2 MiB as gateway JSON); a watch catching up gets at most 1000 revisions per message,
    /// about 300 KB for typical instance values. 64 MiB is far above both.
    /// </remarks>
    public long MaxWatchMessageBytes { get; set; } = 64L * 1024 * 1024;
}
