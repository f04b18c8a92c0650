using System.Text.Json;

namespace OrleansLimiter.Gateway.Proxy;

/// <summary>
/// The caller's response body, seen on its way out: reads the usage the provider reports (a JSON
/// body's <c>usage</c>, or each server-sent event's) and, for a stream whose usage chunk the gateway
/// asked for on the caller's behalf, leaves that chunk out. Everything else passes unchanged, flushed
/// when the forwarder flushes.
/// </summary>
internal sealed class MeteredBodyStream(Stream inner, bool dropUsageChunk) : Stream
{
    /// <summary>The largest JSON body read for its usage; a larger one passes unread (the estimate stays).</summary>
    internal const int MaxJsonBytes = 8 * 1024 * 1024;

    /// <summary>The largest server-sent event held back to decide whether it is the usage chunk.</summary>
    internal const int MaxEventBytes = 1024 * 1024;

    private byte[] _buffer = new byte[4096];
    private int _length;
    private bool _overflowed;

    /// <summary>How the body is read, set once the upstream's answer is known.</summary>
    public MeterMode Mode { get; set; } = MeterMode.PassThrough;

    /// <summary>What was reported so far; null when nothing was.</summary>
    public ReportedUsage? Usage { get; private set; }

    /// <summary>Whether the caller got every byte the gateway meant to send (false once a write to it failed).</summary>
    public bool CallerGone { get; private set; }

    private bool Holds => Mode == MeterMode.Events && dropUsageChunk;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (Mode == MeterMode.PassThrough)
        {
            await SendAsync(buffer, cancellationToken);
            return;
        }

        if (!Holds)
        {
            await SendAsync(buffer, cancellationToken);
        }

        if (Mode == MeterMode.Json)
        {
            Keep(buffer.Span, MaxJsonBytes);
            return;
        }

        Keep(buffer.Span, int.MaxValue);
        await DrainEventsAsync(final: false, cancellationToken);
    }

    /// <summary>The body is complete (or the forwarding ended): reads what is left.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        if (Mode == MeterMode.Json)
        {
            if (!_overflowed && _length > 0)
            {
                Usage = TryRead(_buffer.AsSpan(0, _length)) ?? Usage;
            }

            _length = 0;
            return;
        }

        if (Mode == MeterMode.Events)
        {
            await DrainEventsAsync(final: true, cancellationToken);
        }
    }

    private async Task DrainEventsAsync(bool final, CancellationToken cancellationToken)
    {
        var start = 0;
        while (true)
        {
            var rest = _buffer.AsSpan(start, _length - start);
            var (end, separator) = EventEnd(rest);
            if (end < 0)
            {
                if (final && rest.Length > 0)
                {
                    end = rest.Length;
                    separator = 0;
                }
                else
                {
                    break;
                }
            }

            var eventLength = end + separator;
            var drop = Inspect(_buffer.AsSpan(start, end));
            if (Holds && !drop)
            {
                await SendAsync(_buffer.AsMemory(start, eventLength), cancellationToken);
            }

            start += eventLength;
        }

        if (start > 0)
        {
            _buffer.AsSpan(start, _length - start).CopyTo(_buffer);
            _length -= start;
        }

        if (_length > MaxEventBytes && Holds)
        {
            // An event this large is no usage chunk: let it through rather than hold the stream.
            await SendAsync(_buffer.AsMemory(0, _length), cancellationToken);
            _length = 0;
        }
        else if (!Holds && _length > MaxEventBytes)
        {
            _length = 0;
        }
    }

    /// <summary>Reads an event's usage; true when it is OpenAI's usage-only chunk (no choices) that the caller did not ask for.</summary>
    private bool Inspect(ReadOnlySpan<byte> sseEvent)
    {
        if (sseEvent.IndexOf("usage"u8) < 0)
        {
            return false;
        }

        var drop = false;
        while (!sseEvent.IsEmpty)
        {
            var newline = sseEvent.IndexOf((byte)'\n');
            var line = newline < 0 ? sseEvent : sseEvent[..newline];
            sseEvent = newline < 0 ? [] : sseEvent[(newline + 1)..];
            line = line.TrimEnd((byte)'\r');
            if (!line.StartsWith("data:"u8))
            {
                continue;
            }

            var data = line[5..].TrimStart((byte)' ');
            try
            {
                using var document = JsonDocument.Parse(data.ToArray());
                var root = document.RootElement;
                if (ReportedUsage.FromDocument(root) is { } reported)
                {
                    Usage = Usage is null ? reported : Usage.Then(reported);
                    drop |= dropUsageChunk && root.TryGetProperty("choices", out var choices) && choices.ValueKind == JsonValueKind.Array && choices.GetArrayLength() == 0;
                }
            }
            catch (JsonException)
            {
                // Not JSON: not a usage report; it passes as it is.
            }
        }

        return drop;
    }

    private static ReportedUsage? TryRead(ReadOnlySpan<byte> json)
    {
        try
        {
            using var document = JsonDocument.Parse(json.ToArray());
            return ReportedUsage.FromDocument(document.RootElement);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Where the first complete event ends (index of its blank line) and the separator's length; -1 when none is complete.</summary>
    private static (int End, int Separator) EventEnd(ReadOnlySpan<byte> text)
    {
        var lf = text.IndexOf("\n\n"u8);
        var crlf = text.IndexOf("\r\n\r\n"u8);
        return (lf, crlf) switch
        {
            ( < 0, < 0) => (-1, 0),
            ( >= 0, < 0) => (lf, 2),
            ( < 0, >= 0) => (crlf, 4),
            _ => lf < crlf ? (lf, 2) : (crlf, 4),
        };
    }

    private void Keep(ReadOnlySpan<byte> data, int max)
    {
        if (_overflowed)
        {
            return;
        }

        if ((long)_length + data.Length > max)
        {
            _overflowed = true;
            _length = 0;
            return;
        }

        if (_length + data.Length > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + data.Length));
        }

        data.CopyTo(_buffer.AsSpan(_length));
        _length += data.Length;
    }

    private async ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        try
        {
            await inner.WriteAsync(data, cancellationToken);
        }
        catch
        {
            CallerGone = true;
            throw;
        }
    }
}

/// <summary>How <see cref="MeteredBodyStream"/> reads a body.</summary>
internal enum MeterMode
{
    /// <summary>Not read (an error answer: nothing is settled from it).</summary>
    PassThrough,

    /// <summary>One JSON document with <c>usage</c>.</summary>
    Json,

    /// <summary>Server-sent events, each possibly with <c>usage</c>.</summary>
    Events,
}
